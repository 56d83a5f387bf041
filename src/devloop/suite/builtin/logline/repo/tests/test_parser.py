from datetime import datetime, timedelta, timezone

import pytest

from logline import ParseError, parse_file, parse_line

COMBINED = (
    '203.0.113.9 - alice [10/Oct/2023:13:55:36 -0700] "GET /index.html?x=1 HTTP/1.1" 200 2326 '
    '"https://example.com/" "Mozilla/5.0 (X11)"'
)


def test_combined_line():
    rec = parse_line(COMBINED)
    assert rec.ip == "203.0.113.9"
    assert rec.user == "alice"
    assert rec.time == datetime(2023, 10, 10, 13, 55, 36, tzinfo=timezone(timedelta(hours=-7)))
    assert (rec.method, rec.path, rec.status, rec.size) == ("GET", "/index.html?x=1", 200, 2326)
    assert rec.agent == "Mozilla/5.0 (X11)"


def test_common_format_without_referer():
    rec = parse_line('10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "POST /api HTTP/2.0" 204 -')
    assert rec.user is None and rec.size == 0 and rec.referer is None


def test_escaped_quote_in_agent():
    line = COMBINED.replace('"Mozilla/5.0 (X11)"', '"bot \\"v2\\""')
    assert parse_line(line).agent == 'bot \\"v2\\"'


def test_garbage_line():
    with pytest.raises(ParseError, match="unrecognised"):
        parse_line("hello")


def test_bad_json_line():
    with pytest.raises(ParseError, match="bad JSON"):
        parse_line('{"remote_addr": "1.2.3.4"')


def test_parse_file_reports_line_number():
    with pytest.raises(ParseError, match="line 3"):
        list(parse_file([COMBINED, "", "nonsense"]))


def test_parse_file_skip_invalid():
    assert len(list(parse_file([COMBINED, "nonsense", COMBINED], skip_invalid=True))) == 2
