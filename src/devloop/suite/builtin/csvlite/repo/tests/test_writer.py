import io

from csvlite import format_row, parse_line, sniff_delimiter, write_rows


def test_quotes_only_when_needed():
    assert format_row(["a", "b c", "d,e", 'f"g', ""]) == 'a,b c,"d,e","f""g",""'


def test_none_is_empty():
    assert format_row([None, 1]) == '"",1'


def test_write_rows_counts():
    out = io.StringIO()
    assert write_rows(out, [["a", 1], ["b", 2]]) == 2
    assert out.getvalue() == "a,1\r\nb,2\r\n"


def test_roundtrip_single_line():
    row = ["x,y", 'q"q', " padded "]
    assert parse_line(format_row(row)) == row


def test_sniff():
    assert sniff_delimiter("a;b;c\n1;2;3\n") == ";"
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"
