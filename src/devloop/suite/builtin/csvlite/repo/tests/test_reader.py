import io

import pytest

from csvlite import TSV, CsvError, Dialect, DictReader, parse_line, read_rows


def test_simple_line():
    assert parse_line("a,b,c") == ["a", "b", "c"]


def test_empty_fields():
    assert parse_line(",,") == ["", "", ""]


def test_quoted_delimiter():
    assert parse_line('"a,b",c') == ["a,b", "c"]


def test_doubled_quote():
    assert parse_line('"say ""hi""",x') == ['say "hi"', "x"]


def test_skip_initial_space():
    assert parse_line('a, "b", c', Dialect(skip_initial_space=True)) == ["a", "b", "c"]


def test_tsv():
    assert parse_line("a\tb,c", TSV) == ["a", "b,c"]


def test_text_after_closing_quote_is_an_error():
    with pytest.raises(CsvError, match="line 1"):
        parse_line('"a"b,c')


def test_unterminated_quote_at_end_of_file():
    with pytest.raises(CsvError, match="unterminated"):
        list(read_rows(['a,"b\n']))


def test_blank_lines_skipped():
    assert list(read_rows(["a,b\n", "\n", "c,d\r\n"])) == [["a", "b"], ["c", "d"]]


def test_dict_reader_header_and_restval():
    rows = list(DictReader(io.StringIO("name,age,city\nann,31\n"), restval="?"))
    assert rows == [{"name": "ann", "age": "31", "city": "?"}]


def test_dict_reader_strict():
    with pytest.raises(CsvError):
        list(DictReader(["a,b\n", "1\n"], strict=True))
