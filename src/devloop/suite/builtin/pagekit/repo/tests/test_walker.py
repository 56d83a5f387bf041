from pagekit import iter_items


def make_server(data):
    calls = []

    def fetch(number, per_page):
        calls.append(number)
        start = (number - 1) * per_page
        return data[start:start + per_page], len(data)

    return fetch, calls


def test_walks_all_pages():
    fetch, calls = make_server(list(range(45)))
    assert list(iter_items(fetch, per_page=20)) == list(range(45))
    assert calls == [1, 2, 3]


def test_empty_collection_single_request():
    fetch, calls = make_server([])
    assert list(iter_items(fetch, per_page=20)) == []
    assert calls == [1]
