import pytest

from pagekit import EmptyPage, InvalidPage, Paginator


def test_page_count_with_partial_last_page():
    assert Paginator(45, per_page=20).page_count == 3


def test_empty_collection_has_one_page():
    p = Paginator(0, per_page=20)
    assert p.page_count == 1
    assert p.page(1).items == []


def test_per_page_is_capped():
    assert Paginator(1000, per_page=500, max_per_page=100).per_page == 100


@pytest.mark.parametrize("bad", ["x", None, 0, -2])
def test_invalid_numbers(bad):
    with pytest.raises(InvalidPage):
        Paginator(10).validate_number(bad)


def test_past_the_end():
    with pytest.raises(EmptyPage):
        Paginator(45, per_page=20).validate_number(4)


def test_page_slices_items():
    items = list(range(45))
    page = Paginator(45, per_page=20).page(3, items)
    assert page.items == list(range(40, 45))
    assert not page.has_next
    assert page.has_previous


def test_label():
    page = Paginator(45, per_page=20).page(2)
    assert page.label() == "Showing 21-40 of 45"


def test_bounds():
    assert Paginator(45, per_page=20).bounds(3) == (40, 45)
