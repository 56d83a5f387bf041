import pytest

from pagenav.summary import page_count, results_summary


def test_page_count():
    assert page_count(395, 20) == 20
    assert page_count(400, 20) == 20
    assert page_count(0, 20) == 1


def test_page_count_invalid():
    with pytest.raises(ValueError):
        page_count(10, 0)


def test_summary():
    assert results_summary(2, 20, 395) == "Showing 21-40 of 395 results"
    assert results_summary(20, 20, 395) == "Showing 381-395 of 395 results"
    assert results_summary(99, 20, 395) == "Showing 381-395 of 395 results"


def test_summary_single_and_empty():
    assert results_summary(3, 10, 21, noun="users") == "Showing 21 of 21 users"
    assert results_summary(1, 10, 0) == "No results"
