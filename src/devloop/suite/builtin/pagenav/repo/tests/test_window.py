import pytest

from pagenav import page_window


def test_centred():
    assert page_window(6, 20) == [4, 5, 6, 7, 8]


def test_start():
    assert page_window(1, 20) == [1, 2, 3, 4, 5]
    assert page_window(2, 20) == [1, 2, 3, 4, 5]


def test_fewer_pages_than_window():
    assert page_window(2, 3) == [1, 2, 3]


def test_out_of_range_current_is_clamped_low():
    assert page_window(-3, 20) == [1, 2, 3, 4, 5]


def test_no_pages():
    assert page_window(1, 0) == []


def test_even_size():
    assert page_window(10, 20, size=4) == [8, 9, 10, 11]


def test_invalid_size():
    with pytest.raises(ValueError):
        page_window(1, 10, size=0)
