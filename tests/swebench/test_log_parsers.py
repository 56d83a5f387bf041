"""The official parsers' quirks, pinned without the reference package (the differential test compares
them with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.swebench.log_parsers import (
    LogParseError,
    parse_django,
    parse_log,
    parse_matplotlib,
    parse_pytest,
    parse_pytest_options,
    parse_pytest_v2,
    parse_seaborn,
    parse_sympy,
)

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "swebench_logs"


def test_pytest_keys_every_status_line_by_its_second_token_and_the_last_wins() -> None:
    log = "PASSED [100%]\nFAILED t.py::a - boom - again\nPASSED t.py::a\nPASSED t.py::p[a b]\nSKIPPED [1] t.py:3: why\n"
    assert parse_pytest(log) == {
        "[100%]": "PASSED",
        "t.py::a": "PASSED",
        "t.py::p[a": "PASSED",
        "[1]": "SKIPPED",
    }


def test_pytest_reads_a_real_log_with_nested_pytest_output() -> None:
    statuses = parse_pytest((LOGS / "pytest_v_narrow.log").read_text())
    assert statuses["[100%]"] == "PASSED"  # captured output of a passing test, as the official lists hold it
    assert statuses["test_sample.py::test_fail"] == "FAILED"
    assert statuses["test_sample.py::test_error"] == "ERROR"
    assert statuses["test_sample.py::test_xfail"] == "XFAIL"


def test_pytest_options_shortens_absolute_path_parameters() -> None:
    log = "PASSED t::p[/usr/lib/x.py]\nPASSED t::p[//net/x]\nPASSED t::p[/a/*.py]\nPASSED t::p[/x/y]tail\n"
    assert list(parse_pytest_options(log)) == ["t::p[/x.py]", "t::p[//net/x]", "t::p[/a/*.py]", "t::p[/y]"]


def test_pytest_v2_strips_colour_codes_and_control_characters_and_reads_progress_lines() -> None:
    log = "\x1b[32mPASSED\x1b[0m t::a\n\x1b[1;31mFAILED\x1b[0m t::b - x\nt::c PASSED\nPASSED\tt::d\n"
    # A compound code (ESC[1;31m) leaves "[1;31m" before the status word, so that line names no test; a tab
    # is removed, not turned into a space, so "PASSED\tt::d" is one token.
    assert parse_pytest_v2(log) == {"t::a": "PASSED", "t::c": "PASSED"}


def test_matplotlib_writes_mouse_buttons_as_numbers() -> None:
    log = "PASSED t::b[MouseButton.LEFT]\nFAILED t::b[MouseButton.RIGHT] - m\n"
    assert parse_matplotlib(log) == {"t::b[1]": "PASSED", "t::b[3]": "FAILED"}


def test_seaborn_reads_passed_and_failed_only_and_refuses_what_the_official_one_cannot_read() -> None:
    assert parse_seaborn("t::a PASSED [ 1%]\nFAILED t::b - x\nSKIPPED t::c\nERROR t::d\n") == {
        "t::a": "PASSED",
        "t::b": "FAILED",
    }
    with pytest.raises(LogParseError, match="line 2"):
        parse_seaborn("ok\nFAILED\n")


def test_sympy_reads_headers_and_result_lines() -> None:
    log = "test_a ok\ntest_b F\n____ sympy/x/tests/test_y.py:test_b ____\ntest_c E\ntest_d f\n"
    assert parse_sympy(log) == {
        "sympy/x/tests/test_y.py:test_b": "FAILED",
        "test_a": "PASSED",
        "test_b": "FAILED",
        "test_c": "ERROR",
    }


def test_django_reads_a_real_runtests_log() -> None:
    statuses = parse_django((LOGS / "django_v2.log").read_text())
    assert statuses["A docstring's first line becomes the test's description."] == "PASSED"
    assert statuses["test_prints (shop.tests.PlainTests.test_prints)"] == "PASSED"  # its lone `ok` line
    assert statuses["Prints on stderr before passing."] == "PASSED"
    assert statuses["test_fail (shop.tests.PlainTests.test_fail)"] == "FAILED"
    assert statuses["test_error (shop.tests.PlainTests.test_error)"] == "ERROR"
    assert statuses["test_skipped (shop.tests.PlainTests.test_skipped)"] == "SKIPPED"
    assert "test_expected_failure (shop.tests.PlainTests.test_expected_failure)" not in statuses


def test_django_header_with_no_id_is_a_parse_error() -> None:
    with pytest.raises(LogParseError):
        parse_django("FAIL:\n")


def test_parse_log_names_an_unknown_parser() -> None:
    with pytest.raises(ValueError, match="unknown log parser 'junit'"):
        parse_log("", "junit")
