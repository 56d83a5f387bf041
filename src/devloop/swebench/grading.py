"""The official grading rules as a pure function: a status map and the expected tests in, a verdict out.

Two rule sets:
- `swebench4` (swebench 4.x, the rules the published Lite and Verified numbers used): a test passes when
  PASSED or XFAIL, fails when absent, FAILED or ERROR; any other status (SKIPPED) counts neither way, so a
  skipped FAIL_TO_PASS test is left out of the ratio.
- `swebench5` (swebench 5.x): a skipped FAIL_TO_PASS test fails (a skipped PASS_TO_PASS test is kept);
  an expected id cut inside its parameters (more `[` than `]`, as the official lists hold ids cut at a
  space) matches the ids it prefixes when they agree on pass or fail; and the run is invalid when the
  map is empty with no sign the suite ran, or when the test command exited non-zero while the log names
  no failure.

Resolution as the official `get_resolution_status`: FULL when every counted FAIL_TO_PASS and
PASS_TO_PASS test passes (an empty list counts as all passing), PARTIAL when some but not all
FAIL_TO_PASS pass and PASS_TO_PASS all pass, else NO.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Rules = Literal["swebench4", "swebench5"]
RULES: tuple[Rules, ...] = ("swebench4", "swebench5")

_PASSING = ("PASSED", "XFAIL")
_FAILING = ("FAILED", "ERROR")

# swebench 5.x's evidence that a runner executed when nothing was parsed (JS runners' summaries, TAP);
# every count must be non-zero.
_SUITE_RAN = re.compile(
    r"Executed [1-9]\d* of \d+|TOTAL: [1-9]\d* (?:SUCCESS|FAILED)|[1-9]\d* passing|Tests:\s+[1-9]\d*"
    r"|Test Suites:\s+(?:\d+ \w+, )*[1-9]\d* total|^# tests [1-9]\d*|[1-9]\d* specs?, \d+ failures?|': ok$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Grade:
    """One graded run."""

    rules: Rules
    valid: bool
    """False: the official harness would not grade this run (reported as not applied / invalid)."""
    invalid_reason: str | None
    resolution: Literal["RESOLVED_FULL", "RESOLVED_PARTIAL", "RESOLVED_NO"]
    f2p_success: list[str] = field(default_factory=list)
    f2p_failure: list[str] = field(default_factory=list)
    p2p_success: list[str] = field(default_factory=list)
    p2p_failure: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return self.valid and self.resolution == "RESOLVED_FULL"


def _lookup(case: str, statuses: Mapping[str, str], rules: Rules) -> str | None:
    """The status of an expected test: exact id; under swebench5 also a unique-outcome prefix match for
    an id cut inside its brackets."""
    if case in statuses:
        return statuses[case]
    if rules == "swebench5" and case.count("[") > case.count("]"):
        matches = [key for key in statuses if key.startswith(case)]
        if matches and len({statuses[key] in _PASSING for key in matches}) == 1:
            return statuses[matches[0]]
    return None


def _split(
    cases: Sequence[str], statuses: Mapping[str, str], rules: Rules, *, skip_counts: str | None
) -> tuple[list[str], list[str]]:
    """(success, failure) of `cases`; `skip_counts` says where a SKIPPED test goes ("success", "failure")
    or None: neither."""
    success: list[str] = []
    failure: list[str] = []
    for case in cases:
        status = _lookup(case, statuses, rules)
        if status in _PASSING:
            success.append(case)
        elif status is None or status in _FAILING:
            failure.append(case)
        elif status == "SKIPPED" and skip_counts == "success":
            success.append(case)
        elif status == "SKIPPED" and skip_counts == "failure":
            failure.append(case)
    return success, failure


def _ratio(success: list[str], failure: list[str]) -> float:
    total = len(success) + len(failure)
    return 1.0 if total == 0 else len(success) / total


def _invalid(statuses: Mapping[str, str], test_exit: int | None, log: str | None) -> str | None:
    if not statuses and (log is None or not _SUITE_RAN.search(log)):
        return "the log names no test and shows no sign that the suite ran"
    if test_exit not in (None, 0) and statuses and not any(s in _FAILING for s in statuses.values()):
        return f"the test command exited {test_exit} but the log names no failed or errored test"
    return None


def grade(
    report_map: Mapping[str, str],
    fail_to_pass: Sequence[str],
    pass_to_pass: Sequence[str],
    *,
    rules: Rules = "swebench4",
    test_exit: int | None = None,
    log: str | None = None,
) -> Grade:
    """Grade a parsed test log (`report_map`: test id -> status) against the expected lists.

    `test_exit` is the test command's exit status and `log` the raw test output; swebench5 reads both to
    decide whether the run is valid, swebench4 neither.
    """
    if rules not in RULES:
        raise ValueError(f"unknown grading rules {rules!r}; expected one of {', '.join(RULES)}")
    reason = _invalid(report_map, test_exit, log) if rules == "swebench5" else None
    if reason is not None:
        return Grade(rules=rules, valid=False, invalid_reason=reason, resolution="RESOLVED_NO")
    f2p_success, f2p_failure = _split(
        fail_to_pass, report_map, rules, skip_counts="failure" if rules == "swebench5" else None
    )
    p2p_success, p2p_failure = _split(
        pass_to_pass, report_map, rules, skip_counts="success" if rules == "swebench5" else None
    )
    f2p, p2p = _ratio(f2p_success, f2p_failure), _ratio(p2p_success, p2p_failure)
    if f2p == 1 and p2p == 1:
        resolution: Literal["RESOLVED_FULL", "RESOLVED_PARTIAL", "RESOLVED_NO"] = "RESOLVED_FULL"
    elif 0 < f2p < 1 and p2p == 1:
        resolution = "RESOLVED_PARTIAL"
    else:
        resolution = "RESOLVED_NO"
    return Grade(
        rules=rules,
        valid=True,
        invalid_reason=None,
        resolution=resolution,
        f2p_success=f2p_success,
        f2p_failure=f2p_failure,
        p2p_success=p2p_success,
        p2p_failure=p2p_failure,
    )
