"""Verdicts and the official SWE-bench grading rules (FAIL_TO_PASS / PASS_TO_PASS -> FULL/PARTIAL/NO)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from devloop.parse import log_parsers as devloop_parsers
from devloop.parse.log_parsers import TestStatus
from devloop.swebench import log_parsers as official_parsers
from devloop.swebench.grading import Rules
from devloop.swebench.grading import grade as official_grade

# The names an environment's `log_parser` may take: every official SWE-bench parser, and devloop's junit.
# pytest and sympy are the official ones, so that ids (pseudo-ids such as `[100%]` included) and the
# last-status-wins rule are those the official FAIL_TO_PASS / PASS_TO_PASS lists were computed with.
LOG_PARSERS: tuple[str, ...] = (*official_parsers.PARSERS, "junit")


def parse_test_log(log: str, parser: str) -> dict[str, str]:
    """Parse a test log with the environment's `log_parser`. Raises `devloop.swebench.LogParseError` where the official
    parser has no reading of this log, ValueError for an unknown name."""
    if parser in official_parsers.PARSERS:
        return official_parsers.parse_log(log, parser)
    if parser == "junit":
        return devloop_parsers.parse_log(log, parser)
    raise ValueError(f"unknown log parser {parser!r}; expected one of {', '.join(LOG_PARSERS)}")


class Category(StrEnum):
    """The outcome class of one graded instance."""

    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    EMPTY_PATCH = "empty_patch"
    PATCH_APPLY_FAILED = "patch_apply_failed"
    ENV_ERROR = "env_error"
    TIMEOUT = "timeout"
    AGENT_ERROR = "agent_error"
    """The agent stopped for a reason that is not the model's answer (model server, runtime): redone on resume."""
    ERROR = "error"


# Categories reported under `error` in report.json, as the official harness lumps them.
ERROR_CATEGORIES = frozenset(
    {Category.PATCH_APPLY_FAILED, Category.ENV_ERROR, Category.TIMEOUT, Category.AGENT_ERROR, Category.ERROR}
)


class Resolution(StrEnum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NO = "NO"


# Absent from the log: counted as failed, shown as MISSING in the per-test status.
MISSING = "MISSING"


def _lists() -> dict[str, list[str]]:
    return {"success": [], "failure": []}


class TestsStatus(BaseModel):
    """Per-list success/failure, the shape of the official report's `tests_status`."""

    FAIL_TO_PASS: dict[str, list[str]] = Field(default_factory=_lists)
    PASS_TO_PASS: dict[str, list[str]] = Field(default_factory=_lists)


class Verdict(BaseModel):
    """The graded outcome of one instance; written as `instances/<id>/verdict.json`."""

    instance_id: str
    category: Category
    resolution: Resolution | None = None
    """FULL / PARTIAL / NO when the tests ran, else None."""
    message: str = ""
    """One line explaining a non-resolved outcome (which step failed and why)."""
    tests: dict[str, str] = Field(default_factory=dict)
    """Status of every FAIL_TO_PASS and PASS_TO_PASS test (PASSED, FAILED, ..., MISSING)."""
    tests_status: TestsStatus = Field(default_factory=TestsStatus)
    patch_applied_with: str | None = None
    """Which step of the fallback chain applied the model patch (git apply, git apply --reject, patch)."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Seconds per phase: env, extract, install, apply, tests, agent, total."""
    logs: dict[str, str] = Field(default_factory=dict)
    """Log files written beside the verdict, by role (test, install, env_build, patch)."""
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def resolved(self) -> bool:
        return self.category == Category.RESOLVED


def _passed(test: str, statuses: dict[str, str]) -> bool:
    return statuses.get(test) in (TestStatus.PASSED, TestStatus.XFAIL)


def _failed(test: str, statuses: dict[str, str]) -> bool:
    return test not in statuses or statuses[test] in (TestStatus.FAILED, TestStatus.ERROR)


def _split(tests: list[str], statuses: dict[str, str]) -> dict[str, list[str]]:
    # A test neither passed nor failed (SKIPPED) is left out of both lists, as officially.
    return {
        "success": [t for t in tests if _passed(t, statuses)],
        "failure": [t for t in tests if not _passed(t, statuses) and _failed(t, statuses)],
    }


def _rate(split: dict[str, list[str]]) -> float:
    total = len(split["success"]) + len(split["failure"])
    return 1.0 if total == 0 else len(split["success"]) / total


def grade_statuses(
    fail_to_pass: list[str], pass_to_pass: list[str], statuses: dict[str, str]
) -> tuple[Resolution, TestsStatus, dict[str, str]]:
    """Apply the official rules: FULL when every FAIL_TO_PASS and PASS_TO_PASS test passes (PASSED or
    XFAIL; a SKIPPED one counts neither way); PARTIAL when some FAIL_TO_PASS pass and all PASS_TO_PASS
    do; else NO. Returns the resolution, the per-list split, and each listed test's status."""
    report = TestsStatus(
        FAIL_TO_PASS=_split(fail_to_pass, statuses), PASS_TO_PASS=_split(pass_to_pass, statuses)
    )
    f2p, p2p = _rate(report.FAIL_TO_PASS), _rate(report.PASS_TO_PASS)
    if f2p == 1 and p2p == 1:
        resolution = Resolution.FULL
    elif 0 < f2p < 1 and p2p == 1:
        resolution = Resolution.PARTIAL
    else:
        resolution = Resolution.NO
    per_test = {t: statuses.get(t, MISSING) for t in [*fail_to_pass, *pass_to_pass]}
    return resolution, report, per_test


_RESOLUTIONS = {
    "RESOLVED_FULL": Resolution.FULL,
    "RESOLVED_PARTIAL": Resolution.PARTIAL,
    "RESOLVED_NO": Resolution.NO,
}


def grade_log(
    fail_to_pass: list[str],
    pass_to_pass: list[str],
    statuses: dict[str, str],
    *,
    rules: Rules = "swebench4",
    test_exit: int | None = None,
    log: str | None = None,
) -> tuple[Resolution, TestsStatus, dict[str, str], str | None]:
    """Grade a parsed log with the official `rules` (see `devloop.swebench.grading`). Returns the resolution,
    the per-list split, each listed test's status, and why the run is invalid (swebench5 only) or None."""
    graded = official_grade(statuses, fail_to_pass, pass_to_pass, rules=rules, test_exit=test_exit, log=log)
    report = TestsStatus(
        FAIL_TO_PASS={"success": graded.f2p_success, "failure": graded.f2p_failure},
        PASS_TO_PASS={"success": graded.p2p_success, "failure": graded.p2p_failure},
    )
    per_test = {t: statuses.get(t, MISSING) for t in [*fail_to_pass, *pass_to_pass]}
    return _RESOLUTIONS[graded.resolution], report, per_test, graded.invalid_reason
