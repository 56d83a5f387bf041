"""What the item page and a re-grade show of a test log: each failure's error lines, and the tail."""

from __future__ import annotations

from devloop.review.failures import failure_summary

from .conftest import HOSTILE, PYTEST_LOG


def test_pytest_failures_are_their_error_lines_and_location() -> None:
    view = failure_summary(PYTEST_LOG)
    assert [(f.test, f.lines) for f in view.failures] == [("test_a", [
        "E       AssertionError: assert 1 == 2", f"E        +  where 1 = parse('{HOSTILE}')",
        "t.py:3: AssertionError"])]  # fmt: skip
    assert view.total_lines == len(PYTEST_LOG.splitlines()) and view.tail[-1].startswith("=====")


def test_without_a_failures_section_the_short_summary_names_them_and_limits_hold() -> None:
    log = (
        "\n".join(f"FAILED t.py::test_{n} - ValueError: bad {n}" for n in range(30))
        + "\nERROR t.py::test_x\n"
    )
    view = failure_summary(log, max_failures=5, tail=3)
    assert [f.test for f in view.failures] == [f"t.py::test_{n}" for n in range(5)]
    assert view.failures[0].lines == ["ValueError: bad 0"] and view.more_failures == 26
    assert view.tail == ["FAILED t.py::test_28 - ValueError: bad 28", "FAILED t.py::test_29 - ValueError: bad 29",
                         "ERROR t.py::test_x"]  # fmt: skip
    many = "= FAILURES =\n___ test_m ___\n" + "E   line\n" * 20
    (only,) = failure_summary(many, max_lines=12).failures
    assert (len(only.lines), only.more) == (12, 8)
    assert failure_summary("ok\n").failures == []
