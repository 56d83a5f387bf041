from pagenav import build_nav, page_from_query, render_html, render_text


def test_text_middle():
    assert render_text(6, 20) == "« 1 … 4 5 [6] 7 8 … 20 »"


def test_text_first_page():
    assert render_text(1, 20) == "« [1] 2 3 4 5 … 20 »"


def test_no_ellipsis_for_adjacent_pages():
    assert render_text(4, 20) == "« 1 2 3 [4] 5 6 … 20 »"


def test_prev_disabled_on_first():
    first = build_nav(1, 3)[0]
    assert first.disabled and first.page is None


def test_html_links_keep_query():
    out = render_html("/search?q=a+b", 2, 3)
    assert '<a href="/search?q=a+b&amp;page=1">«</a>' in out
    assert '<span class="current" aria-current="page">2</span>' in out


def test_page_from_query():
    assert page_from_query({"page": "3"}, 10) == 3
    assert page_from_query({"page": ["99"]}, 10) == 10
    assert page_from_query({"page": "abc"}, 10) == 1
    assert page_from_query({}, 0) == 1
