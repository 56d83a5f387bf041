import pytest

from tablemd import render, render_dicts


def test_basic_table():
    out = render(["name", "qty"], [["apple", 3], ["kiwi", 12]])
    assert out == (
        "| name  | qty |\n"
        "| ----- | --- |\n"
        "| apple | 3   |\n"
        "| kiwi  | 12  |\n"
    )


def test_short_rows_padded():
    out = render(["a", "b"], [["x"]])
    assert out.splitlines()[-1] == "| x   |     |"


def test_long_row_rejected():
    with pytest.raises(ValueError, match="row 1 has 3 cells"):
        render(["a", "b"], [[1, 2, 3]])


def test_no_columns():
    with pytest.raises(ValueError):
        render([], [])


def test_precision_and_none():
    out = render(["v"], [[1.23456], [None]], precision=2)
    assert "| 1.23 |" in out
    assert out.splitlines()[-1] == "|      |"


def test_wide_characters_align():
    lines = render(["city"], [["東京"], ["Paris"]]).splitlines()
    assert lines[2] == "| 東京  |"
    assert lines[3] == "| Paris |"


def test_pipe_escaped_and_newline():
    out = render(["x"], [["a|b\nc"]])
    assert "a\\|b<br>c" in out


def test_max_width():
    out = render(["text"], [["abcdefghij"]], max_width=5)
    assert "| abcd… |" in out


def test_render_dicts_columns():
    out = render_dicts([{"a": 1}, {"b": 2, "a": 3}])
    assert out.splitlines()[0] == "| a   | b   |"
    assert out.splitlines()[2] == "| 1   |     |"
