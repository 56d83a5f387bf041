"""Failure summaries: progress wording, newly failing tests first, and the token budget."""

from __future__ import annotations

import pytest

from devloop.feedback import base
from devloop.feedback.base import FailureDetail
from devloop.feedback.summary import summarize
from devloop.feedback.tokens import CHARS_PER_TOKEN, count_tokens, trim_to_tokens


def report(statuses: dict[str, str], failures: list[FailureDetail] | None = None) -> base.TestReport:
    return base.TestReport(statuses=statuses, failures=failures or [])


def big_failure(i: int) -> FailureDetail:
    return FailureDetail(
        f"tests/test_mod.py::test_case_{i}",
        message=f"AssertionError: assert {i} == {i + 1}\n" + "  where something = f(x)\n" * 30,
        frames=[f"pkg/mod.py:{n} in helper_{n}\n    value = compute(x, y, z)" for n in range(8)],
        locals={f"var{n}": "x" * 500 for n in range(20)},
        stdout="printed line\n" * 200,
        stderr="warning\n" * 100,
    )


def test_progress_names_newly_failing_and_newly_passing_tests() -> None:
    before = report({"t::a": "PASSED", "t::b": "FAILED", "t::c": "PASSED", "t::d": "FAILED"})
    now = report(
        {"t::a": "FAILED", "t::b": "PASSED", "t::c": "PASSED", "t::d": "PASSED"},
        [FailureDetail("t::a", "AssertionError: assert 1 == 2")],
    )
    text = summarize(now, before, 512)
    assert text.splitlines()[0] == (
        "[test hook] 3 of 4 now pass (was 2 of 4). Newly failing (passed before): "
        "t::a. Newly passing: t::b, t::d."
    )
    assert "FAILED t::a\n  AssertionError: assert 1 == 2" in text


def test_first_run_has_no_comparison() -> None:
    assert summarize(report({"t::a": "PASSED"}), None, 64) == "[test hook] 1 of 1 pass."


def test_newly_failing_tests_come_before_old_failures() -> None:
    before = report({"t::old": "FAILED", "t::new": "PASSED"})
    now = report(
        {"t::old": "FAILED", "t::new": "FAILED"},
        [FailureDetail("t::old", "old"), FailureDetail("t::new", "new")],
    )
    text = summarize(now, before, 512)
    assert text.index("FAILED t::new") < text.index("FAILED t::old")


def test_a_failing_status_without_details_is_still_listed() -> None:
    text = summarize(report({"t::x": "ERROR"}), None, 128)
    assert "FAILED t::x" in text


@pytest.mark.parametrize("budget", [40, 64, 128, 256, 512, 2048])
@pytest.mark.parametrize("n_failures", [1, 3, 40])
def test_summary_stays_within_budget(budget: int, n_failures: int) -> None:
    failures = [big_failure(i) for i in range(n_failures)]
    now = report({f.test_id: "FAILED" for f in failures} | {"t::ok": "PASSED"}, failures)
    text = summarize(now, None, budget)
    assert count_tokens(text) <= budget
    assert text.startswith(f"[test hook] 1 of {n_failures + 1} pass")
    if budget >= 128:
        assert "FAILED tests/test_mod.py::test_case_0" in text
        assert "AssertionError: assert 0 == 1" in text


def test_generous_budget_keeps_frames_locals_and_output() -> None:
    failure = FailureDetail(
        "t::a",
        "ValueError: bad",
        ["pkg/m.py:3 in f\n    raise ValueError('bad')"],
        {"n": "3"},
        stdout="hello",
        stderr="oops",
    )
    text = summarize(report({"t::a": "FAILED"}, [failure]), None, 512)
    for part in (
        "at pkg/m.py:3 in f",
        "raise ValueError('bad')",
        "locals: n=3",
        "captured stdout: hello",
        "captured stderr: oops",
    ):
        assert part in text


def test_approximation_over_counts_and_trim_fits() -> None:
    text = "word " * 1000
    assert count_tokens(text) >= len(text) // 5  # any real tokenizer or the chars/3 approximation
    cut = trim_to_tokens(text, 50)
    assert count_tokens(cut) <= 50 and cut.endswith("[... trimmed to fit the token budget]")
    assert trim_to_tokens("short", 50) == "short"
    assert CHARS_PER_TOKEN == 3
