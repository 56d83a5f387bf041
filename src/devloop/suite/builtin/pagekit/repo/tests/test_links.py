from pagekit import Paginator, link_header


def test_first_page_links():
    header = link_header("https://api.example.com/users?sort=name", Paginator(45, per_page=20), 1)
    assert 'rel="prev"' not in header
    assert "page=2&per_page=20" in header
    assert header.endswith('page=3&per_page=20>; rel="last"')
    assert "sort=name" in header


def test_middle_page_links():
    header = link_header("https://api.example.com/users", Paginator(45, per_page=20), 2)
    assert '?page=1&per_page=20>; rel="prev"' in header
    assert '?page=3&per_page=20>; rel="next"' in header
