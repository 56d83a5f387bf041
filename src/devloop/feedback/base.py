"""Values shared by the feedback loop's parts: a test run's outcome and each failure's details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class FailureDetail:
    """One failing test, as the model should see it."""

    test_id: str  # pytest node id (or jest "file > suite > name")
    message: str = ""  # the assertion / exception message
    frames: list[str] = field(default_factory=list)  # last traceback frames, innermost last
    locals: dict[str, str] = field(default_factory=dict)  # the failing frame's locals (repr, trimmed)
    stdout: str = ""
    stderr: str = ""


@dataclass
class TestReport:
    """The outcome of one run of some tests in the workspace."""

    __test__ = False  # not a pytest test class, whatever its name

    statuses: dict[str, str]  # test id -> PASSED | FAILED | ERROR | SKIPPED | XFAIL | XPASS
    failures: list[FailureDetail] = field(default_factory=list)
    duration_s: float = 0.0  # the test process's own wall time
    timed_out: bool = False
    log: str = ""  # raw output, for rescue rules and debugging
    command: str = ""
    error: str = ""  # one line when the runner itself failed (missing, crashed, tests not collected)

    @property
    def passed(self) -> int:
        return sum(s in ("PASSED", "XFAIL") for s in self.statuses.values())

    @property
    def failed(self) -> int:
        return sum(s in ("FAILED", "ERROR") for s in self.statuses.values())

    @property
    def green(self) -> bool:
        return not self.timed_out and self.failed == 0 and bool(self.statuses)


class TestRunner(Protocol):
    """Runs tests in the workspace (in the task's environment and sandbox)."""

    __test__ = False

    def run(self, tests: list[str] | None, timeout: float) -> TestReport:
        """Run `tests` (node ids or files; None = the whole suite)."""
        ...
