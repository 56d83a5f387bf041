from logline import parse_file, summarise

LINES = [
    '1.1.1.1 - - [10/Oct/2023:13:55:36 +0000] "GET /a?x=1 HTTP/1.1" 200 100',
    '1.1.1.2 - - [10/Oct/2023:13:55:59 +0000] "GET /a HTTP/1.1" 200 50',
    '1.1.1.3 - - [10/Oct/2023:13:56:01 +0000] "GET /b HTTP/1.1" 503 0',
    '1.1.1.3 - - [10/Oct/2023:13:56:02 +0000] "GET /c HTTP/1.1" 404 10',
]


def test_summary():
    s = summarise(parse_file(LINES))
    assert s.requests == 4
    assert s.bytes == 160
    assert s.status_classes == {"2xx": 2, "5xx": 1, "4xx": 1}
    assert s.top_paths(2) == [("/a", 2), ("/b", 1)]
    assert s.error_rate == 0.25


def test_per_minute():
    s = summarise(parse_file(LINES))
    assert sorted(s.per_minute.values()) == [2, 2]
