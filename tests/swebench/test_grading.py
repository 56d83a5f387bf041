"""The swebench 4.x and 5.x grading rules, each difference pinned; 4.x checked against the official code."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from devloop.swebench import grade
from devloop.swebench.log_parsers import parse_pytest

LITE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "swebench_lite_envs.json").read_text())[
    "records"
]


def test_a_skipped_fail_to_pass_test_is_left_out_under_4_and_fails_under_5() -> None:
    statuses = {"t::a": "SKIPPED", "t::b": "PASSED"}
    four = grade(statuses, ["t::a", "t::b"], [], rules="swebench4")
    assert four.resolved and four.f2p_success == ["t::b"] and four.f2p_failure == []
    five = grade(statuses, ["t::a", "t::b"], [], rules="swebench5")
    assert not five.resolved and five.resolution == "RESOLVED_PARTIAL" and five.f2p_failure == ["t::a"]


def test_a_skipped_pass_to_pass_test_is_left_out_under_4_and_kept_under_5() -> None:
    statuses = {"t::f": "PASSED", "t::p": "SKIPPED"}
    assert grade(statuses, ["t::f"], ["t::p"], rules="swebench4").p2p_success == []
    five = grade(statuses, ["t::f"], ["t::p"], rules="swebench5")
    assert five.resolved and five.p2p_success == ["t::p"]


def test_an_id_cut_at_a_space_matches_by_prefix_under_5_only() -> None:
    # pytest prints "PASSED t.py::test_x[a b]"; the official lists hold the id cut at the space.
    statuses = {"t.py::test_x[a b]": "PASSED", "t.py::test_x[a c]": "XFAIL"}
    assert not grade(statuses, ["t.py::test_x[a"], [], rules="swebench4").resolved
    assert grade(statuses, ["t.py::test_x[a"], [], rules="swebench5").resolved
    # the candidates disagree on pass or fail: no match
    assert not grade(
        {**statuses, "t.py::test_x[a d]": "FAILED"}, ["t.py::test_x[a"], [], rules="swebench5"
    ).resolved
    # balanced brackets: exact ids only
    assert not grade({"t.py::test_xy": "PASSED"}, ["t.py::test_x"], [], rules="swebench5").resolved


def test_a_nonzero_exit_with_no_failure_in_the_log_is_invalid_under_5() -> None:
    statuses = {"t::a": "PASSED"}
    assert grade(statuses, ["t::a"], [], rules="swebench4", test_exit=1).resolved
    five = grade(statuses, ["t::a"], [], rules="swebench5", test_exit=1)
    assert not five.valid and not five.resolved and "exited 1" in (five.invalid_reason or "")
    # a failure in the log explains the exit status: valid, and graded
    graded = grade({**statuses, "t::b": "FAILED"}, ["t::a"], ["t::b"], rules="swebench5", test_exit=1)
    assert graded.valid and graded.resolution == "RESOLVED_NO"
    assert grade(statuses, ["t::a"], [], rules="swebench5", test_exit=0).resolved


def test_an_empty_map_is_invalid_under_5_unless_the_log_shows_the_suite_ran() -> None:
    assert grade({}, [], [], rules="swebench4").resolved  # nothing expected, nothing failed
    assert not grade({}, [], [], rules="swebench5").valid
    assert grade({}, [], [], rules="swebench5", log="Executed 3 of 3 SUCCESS").valid


def test_official_pseudo_ids_grade_as_the_official_lists_expect() -> None:
    record = next(r for r in LITE if r["instance_id"] == "pytest-dev__pytest-5227")
    assert "[100%]" in record["PASS_TO_PASS"]
    assert parse_pytest("PASSED [100%]\n")["[100%]"] == "PASSED"


def test_unknown_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown grading rules 'swebench6'"):
        grade({}, [], [], rules="swebench6")  # type: ignore[arg-type]


def test_rules_4_match_the_official_grading_code() -> None:
    from devloop.swebench import official

    try:
        reference = official.load_grading()
    except official.OfficialUnavailable as exc:
        pytest.skip(f"needs the reference package: {exc}")
    ids = ["a", "b", "c"]
    statuses = ["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL", None]
    cases = 0
    for combo in itertools.product(statuses, repeat=len(ids)):
        status_map = {i: s for i, s in zip(ids, combo, strict=True) if s is not None}
        for split in range(len(ids) + 1):
            f2p, p2p = ids[:split], ids[split:]
            report = reference.get_eval_tests_report(status_map, {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})
            mine = grade(status_map, f2p, p2p, rules="swebench4")
            assert mine.resolution == reference.get_resolution_status(report)
            assert (mine.f2p_success, mine.f2p_failure) == (
                report["FAIL_TO_PASS"]["success"],
                report["FAIL_TO_PASS"]["failure"],
            )
            assert (mine.p2p_success, mine.p2p_failure) == (
                report["PASS_TO_PASS"]["success"],
                report["PASS_TO_PASS"]["failure"],
            )
            cases += 1
    assert cases == 6**3 * 4
