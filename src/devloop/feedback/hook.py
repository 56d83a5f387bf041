"""FeedbackHook: after every step that changed files, run the relevant tests, summarise, checkpoint or roll back.

Progress is judged by a score, (-failing, passing), over the tests of the run; a test that an earlier run of
the same selection reported and that has vanished (its file no longer collects, say) counts as failing.
A step *improves* when its score beats the best checkpoint's, or when every test passes and the score is no
worse (so finishing touches on a green tree keep being checkpointed). Only steps that changed files count
towards `rollback_threshold`: reading and searching are how an agent finds its way, and do not make the
tree worse. After `rollback_threshold` consecutive non-improving file-changing steps the best checkpoint
is restored and the model is told which files were undone and why; `max_retry` bounds the rollbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devloop.feedback.base import TestReport, TestRunner
from devloop.feedback.checkpoints import Checkpoint, Checkpoints
from devloop.feedback.events import EventLog, patch_sha
from devloop.feedback.livediff import DiffStreamer
from devloop.feedback.metrics import Metrics
from devloop.feedback.selection import TestSelector
from devloop.feedback.summary import summarize
from devloop.feedback.tokens import count_tokens
from devloop.hooks import Inject, Restore, StepHook, StepInfo

# Per-test events are written for failing tests and status changes, at most this many per run.
_MAX_TEST_EVENTS = 200


def run_status(report: TestReport) -> str:
    """green | failing | timeout | empty | hook_error (the runner is missing, crashed, or could not
    collect the tests: not the tests' verdict)."""
    if report.timed_out:
        return "timeout"
    if report.error:
        return "hook_error"
    if not report.statuses:
        return "empty"
    return "green" if report.green else "failing"


def trace_bytes(report: TestReport) -> int:
    """UTF-8 bytes of the failure details (messages, frames, locals, captured output)."""
    total = 0
    for f in report.failures:
        parts = [f.message, *f.frames, *f.locals.values(), f.stdout, f.stderr]
        total += sum(len(p.encode("utf-8", errors="replace")) for p in parts)
    return total


@dataclass
class FeedbackHook(StepHook):
    """See the module docstring. `runner` None: only the live diff, events and metrics."""

    runner: TestRunner | None
    selector: TestSelector
    checkpoints: Checkpoints
    events: EventLog
    metrics: Metrics
    streamer: DiffStreamer | None = None
    timeout_test: float = 60.0
    summary_tokens: int = 512
    rollback_threshold: int = 3
    max_retry: int = 20
    last_report: TestReport | None = None
    last_tests: list[str] | None = None
    test_runs: int = 0
    rollbacks: int = 0
    no_progress: int = 0
    overheads: list[float] = field(default_factory=list)
    _reports: dict[int, TestReport] = field(default_factory=dict)  # checkpoint number -> its tests
    _seen: dict[str, str] = field(default_factory=dict)  # every test id reported so far -> last status
    _skip_patch: str | None = None  # the state just restored: no need to test it again
    # Removes the cached bytecode of the files some patches touch (candidates.forget_bytecode), so a
    # same-size re-edit within the second is never tested through the previous state's .pyc.
    forget_bytecode: Callable[[Sequence[str]], None] | None = None
    _tested_patch: str = ""

    def after_step(self, info: StepInfo) -> Inject | Restore | None:
        started = time.monotonic()
        self.metrics.steps.inc()
        self.metrics.tokens.labels(kind="prompt").inc(info.usage.prompt_tokens)
        self.metrics.tokens.labels(kind="completion").inc(info.usage.completion_tokens)
        sha = patch_sha(info.patch)
        self.events.set_context(step=info.step, patch_sha=sha)
        self.selector.note_calls(info.calls)
        if not info.changed:
            return None
        if self.streamer is not None:
            self.streamer.update(info.patch, step=info.step)
        if self.runner is None or info.patch == self._skip_patch:
            return None
        self._skip_patch = None
        tests = self.selector.select(info.patch)
        selected = time.monotonic()
        if tests == []:
            self.events.emit(
                "test_run",
                test="0 selected",
                status="none_selected",
                timings={"select_s": round(selected - started, 6)},
            )
            return None
        if self.forget_bytecode is not None:  # what changed since the last run, reverted files included
            self.forget_bytecode((info.patch, self._tested_patch))
        self._tested_patch = info.patch
        report = self.runner.run(tests, self.timeout_test)
        ran = time.monotonic()
        previous = self.last_report
        text = summarize(report, previous, self.summary_tokens)
        ready = time.monotonic()
        overhead = max(0.0, (ready - started) - report.duration_s)
        self.overheads.append(overhead)
        self.test_runs += 1
        self.last_report, self.last_tests = report, tests
        status = run_status(report)
        self.metrics.test_runs.labels(status=status).inc()
        self.metrics.test_failures.inc(report.failed)
        self.metrics.test_latency.observe(report.duration_s)
        self.metrics.overhead.observe(overhead)
        self.events.emit(
            "test_run", test="all" if tests is None else f"{len(tests)} selected", status=status,
            trace_bytes=trace_bytes(report), passed=report.passed, failed=report.failed,
            total=len(report.statuses), summary_tokens=count_tokens(text), tests=tests,
            timings={"select_s": round(selected - started, 6), "test_s": round(report.duration_s, 6),
                     "run_s": round(ran - selected, 6), "summary_s": round(ready - ran, 6),
                     "overhead_s": round(overhead, 6)})  # fmt: skip
        self._test_events(report, previous)
        # A broken runner says nothing about the edit: no checkpoint, no step towards a rollback.
        rollback = None if report.error else self._progress(info, report, tests)
        if rollback is None:
            return Inject(text)
        return Restore(f"{text}\n\n{rollback.text}", rollback.patch)

    # -- progress, checkpoints, rollback --------------------------------------------------------------

    def score(self, report: TestReport, tests: list[str] | None) -> tuple[int, int]:
        """(-failing, passing); tests seen before in the selected files but absent now count as failing."""
        covered = None if tests is None else {t.split("::")[0] for t in tests}
        vanished = [
            t
            for t in self._seen
            if t not in report.statuses
            and (covered is None or t.split("::")[0] in covered or t in (tests or []))
        ]
        for test_id, status in report.statuses.items():
            self._seen[test_id] = status
        return (-(report.failed + len(vanished)), report.passed)

    def _progress(self, info: StepInfo, report: TestReport, tests: list[str] | None) -> Restore | None:
        score = self.score(report, tests)
        best = self.checkpoints.last
        if report.timed_out:
            improved = False
        elif best is None:
            improved = True
        else:
            improved = score > best.score or (report.green and score >= best.score)
        if improved:
            cp = self.checkpoints.save(
                info.step, info.patch, score=score, note=f"{report.passed} of {len(report.statuses)} pass"
            )
            self._reports[cp.number] = report
            self.no_progress = 0
            self.events.emit(
                "checkpoint",
                test=f"{report.passed} of {len(report.statuses)} pass",
                status="saved",
                ref=cp.ref,
                commit=cp.commit,
                checkpoint=cp.number,
            )
            return None
        self.no_progress += 1
        if best is None or self.no_progress < self.rollback_threshold:
            return None
        if self.rollbacks >= self.max_retry:
            self.events.emit("rollback", status="skipped", reason=f"--max-retry {self.max_retry} reached")
            self.no_progress = 0
            return None
        return self.rollback(
            best, report, why=f"the last {self.no_progress} file-changing steps did not improve the tests"
        )

    def rollback(self, cp: Checkpoint, now: TestReport | None = None, *, why: str) -> Restore:
        """Restore `cp`, record it, and tell the model."""
        t0 = time.monotonic()
        undone = self.checkpoints.restore(cp)
        self.rollbacks += 1
        self.no_progress = 0
        self._skip_patch = cp.patch
        best_report = self._reports.get(cp.number)
        if best_report is not None:
            self.last_report = best_report
        if self.streamer is not None:
            self.streamer.update(cp.patch)
        self.events.set_context(retry=self.rollbacks, patch_sha=patch_sha(cp.patch))
        self.events.emit(
            "rollback",
            status="restored",
            ref=cp.ref,
            checkpoint=cp.number,
            reason=why,
            files=undone.files,
            timings={"restore_s": round(time.monotonic() - t0, 6)},
        )
        at_best = f"{-cp.score[0]} failing, {cp.score[1]} passing"
        current = f"; now {now.failed} failing, {now.passed} passing" if now is not None else ""
        text = (
            f"[rollback] {why.capitalize()} (best: {at_best} at step {cp.step}{current}). The workspace "
            f"was restored to checkpoint {cp.number} (after step {cp.step}): {undone.describe()}. "
            "Those edits are gone; re-read the files before editing and try a different approach."
        )
        return Restore(text, cp.patch)

    def _test_events(self, report: TestReport, previous: TestReport | None) -> None:
        before = previous.statuses if previous is not None else {}
        details = {f.test_id: f for f in report.failures}
        n = 0
        for test_id, status in report.statuses.items():
            failing = status in ("FAILED", "ERROR")
            if not failing and before.get(test_id, status) == status:
                continue
            detail = details.get(test_id)
            size = 0 if detail is None else len((detail.message + "".join(detail.frames)).encode())
            self.events.emit(
                "test", test=test_id, status=status, previous=before.get(test_id), trace_bytes=size
            )
            n += 1
            if n >= _MAX_TEST_EVENTS:
                break

    def result_fields(self) -> dict[str, Any]:
        """What result.json gets from the hook."""
        report = self.last_report
        best = self.checkpoints.last
        return {
            "test_status": run_status(report) if report is not None else None,
            "hook_error": (report.error or None) if report is not None else None,
            "tests_passed": report.passed if report is not None else None,
            "tests_failed": report.failed if report is not None else None,
            "test_runs": self.test_runs,
            "checkpoints": len(self.checkpoints.items),
            "best_checkpoint": None
            if best is None
            else {"ref": best.ref, "step": best.step, "failing": -best.score[0], "passing": best.score[1]},
            "rollbacks": self.rollbacks,
            "feedback_overhead_ms_max": round(max(self.overheads) * 1000, 2) if self.overheads else None,
        }
