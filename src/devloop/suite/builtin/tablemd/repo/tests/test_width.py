from tablemd import display_width, format_cell
from tablemd.width import truncate


def test_display_width():
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("e\u0301") == 1


def test_truncate_wide():
    assert truncate("日本語のテキスト", 7) == "日本語…"
    assert truncate("short", 10) == "short"


def test_format_cell_bool():
    assert format_cell(True) == "true"
