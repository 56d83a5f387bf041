"""Fast / Deep / Rescue queues: escalating budgets of agent steps, each with its own instructions.

`--queues fast:3,deep:10,rescue:7`. Fast asks for a quick local fix. If the tests are not green when its budget
is spent (or the model finishes with tests failing), Deep restores the best checkpoint so far and asks for a
cross-file investigation. Rescue applies the rescue rules to the last test output, tells the model what they
found and did, and gets the last budget; if the tests still fail the result is labelled `needs_review`.
The agent's global limits (--max-iterations, tokens, time) still apply to every step.

`QueuePolicy` is a hook on the agent's loop: it counts each queue's steps, and at a queue's end (or when the
model finishes with the tests failing) it enters the next queue through the loop's actions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from devloop.feedback.base import TestReport
from devloop.feedback.rescue import RescueEngine
from devloop.hooks import Actions, ExitStatus, Inject, Restore, Resume, StepHook, StepInfo, Stop

QUEUE_NAMES = ("fast", "deep", "rescue")

NUDGES = {
    "fast": "[queue fast: up to {budget} steps] Aim for a quick, local fix: change as little as needed where the "
    "failure points, run the failing test, and finish as soon as it passes.",
    "deep": "[queue deep: up to {budget} steps] The quick attempts did not make the tests pass. {restored}"
    "Investigate across files before editing: read the code the failing tests exercise and its callers, "
    "find the root cause, then fix it there.",
    "rescue": "[queue rescue: up to {budget} steps] The tests still fail. {rescue}Use this to finish the fix; "
    "if the tests still fail at the end, the result is marked for human review.",
}


class QueueError(ValueError):
    """A bad --queues value; the message is one line naming the part at fault."""


@dataclass(frozen=True)
class QueueSpec:
    name: str  # fast | deep | rescue
    budget: int  # agent steps


def parse_queues(spec: str) -> list[QueueSpec]:
    """`"fast:3,deep:10,rescue:7"` -> specs, in escalation order. Any subset of the three queues may be given,
    each once, in that order; budgets are positive step counts."""
    queues: list[QueueSpec] = []
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip():
        raise QueueError("--queues: empty; expected e.g. fast:3,deep:10,rescue:7")
    for part in parts:
        name, sep, budget = part.partition(":")
        name = name.strip().lower()
        if not sep:
            raise QueueError(f"--queues: {part!r}: expected NAME:STEPS, e.g. fast:3")
        if name not in QUEUE_NAMES:
            raise QueueError(
                f"--queues: {part!r}: unknown queue {name!r}; choose from {', '.join(QUEUE_NAMES)}"
            )
        if not budget.strip().isdigit() or int(budget) <= 0:
            raise QueueError(f"--queues: {part!r}: the budget must be a positive number of steps")
        if any(q.name == name for q in queues):
            raise QueueError(f"--queues: {part!r}: queue {name!r} given twice")
        if queues and QUEUE_NAMES.index(name) < QUEUE_NAMES.index(queues[-1].name):
            raise QueueError(f"--queues: {part!r}: queues escalate in the order {' -> '.join(QUEUE_NAMES)}")
        queues.append(QueueSpec(name, int(budget)))
    return queues


class QueueFeedback(Protocol):
    """What the queues need from the feedback loop: the last test report and a way back to the best state."""

    @property
    def last_report(self) -> TestReport | None: ...

    def restore_best(self, why: str) -> Restore | None:
        """Restore the best checkpoint; what to tell the model, or None when there is none."""
        ...


class LoopFeedback:
    """QueueFeedback over devloop.feedback.loop.FeedbackLoop (its hook's report, checkpoints and rollback)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    @property
    def last_report(self) -> TestReport | None:
        report: TestReport | None = self.loop.hook.last_report
        return report

    def restore_best(self, why: str) -> Restore | None:
        # Checkpoints are only taken when the tests improved, so the last one is the best one.
        best = self.loop.checkpoints.last
        if best is None:
            return None
        restored: Restore = self.loop.hook.rollback(best, self.loop.hook.last_report, why=why)
        return restored

    def emit(self, kind: str, **fields: Any) -> None:
        self.loop.events.emit(kind, **fields)

    def set_context(self, **fields: Any) -> None:
        self.loop.events.set_context(**fields)


def as_queue_feedback(feedback: Any) -> QueueFeedback:
    """`feedback` itself when it has the QueueFeedback methods, else the FeedbackLoop adapter."""
    return feedback if hasattr(feedback, "restore_best") else LoopFeedback(feedback)


@dataclass
class QueueRecord:
    """One queue's spend and outcome, as result.json records it."""

    name: str
    budget: int
    spent: int = 0  # steps
    tokens: int = 0
    seconds: float = 0.0
    # green | not_green | finished_failing | skipped | the exit status that ended the run (max_iterations, ...)
    outcome: str = "skipped"
    notes: list[str] = field(default_factory=list)


class QueuePolicy(StepHook):
    """Runs the queues in order until the tests pass, the model finishes with nothing to judge, or a limit
    stops the run; `result_fields()` gives what result.json records."""

    def __init__(
        self, feedback: Any, rescue_engine: RescueEngine | None, queues: Sequence[QueueSpec]
    ) -> None:
        self.feedback = as_queue_feedback(feedback)
        self.rescue = rescue_engine
        self.records = [QueueRecord(q.name, q.budget) for q in queues]
        self.needs_review = False
        self._current: QueueRecord | None = None  # the queue being run; None before and after
        self._started = 0.0
        self._ran_rescue = False
        self._last_output = ""  # the last step's observations and feedback, for the rescue rules
        self._last_patch = ""

    def _green(self) -> bool:
        report = self.feedback.last_report
        return report is not None and report.green

    def _emit(self, kind: str, **fields: Any) -> None:
        emit = getattr(self.feedback, "emit", None)
        if callable(emit):
            emit(kind, **fields)

    def before_run(self) -> Actions | None:
        return self._enter(self.records[0])

    def after_step(self, info: StepInfo) -> Actions | None:
        record = self._current
        if record is None:
            return None
        record.spent += 1
        record.tokens += info.usage.total
        self._last_output = "\n".join([*(o.text for o in info.observations), *info.feedback])
        self._last_patch = info.patch
        if info.stop is not None:
            if info.stop.status != ExitStatus.FINISHED or self.feedback.last_report is None or self._green():
                return None  # the run ends; after_run records how
            record.outcome = "finished_failing"  # the model is done but the tests are not: escalate
            nxt = self._close()
            if nxt is None:
                return self._final_stop()
            note = Resume("[queues] You finished, but the tests still fail; continuing.")
            return [note, self._enter(nxt)]
        if record.spent < record.budget:
            return None
        record.outcome = "green" if self._green() else "not_green"
        nxt = self._close()
        if nxt is None or self._green():  # an earlier queue got the tests green: the rest stay "skipped"
            return self._final_stop()
        return self._enter(nxt)

    def after_run(self, stop: Stop) -> None:
        record = self._current
        if record is not None:
            finished_green = stop.status == ExitStatus.FINISHED and self._green()
            record.outcome = "green" if finished_green else str(stop.status)
            self._close()
        self.needs_review = self._ran_rescue and not self._green()

    def _enter(self, record: QueueRecord) -> Inject | Restore:
        """Start `record`'s queue: its entry action (restore the best checkpoint, apply the rules), then its
        instructions."""
        set_context = getattr(self.feedback, "set_context", None)
        if callable(set_context):
            set_context(queue=record.name)
        self._current, self._started = record, time.monotonic()
        self._ran_rescue = self._ran_rescue or record.name == "rescue"
        restored: Restore | None = None
        note = rescue = ""
        if record.name == "deep":
            restored = self.feedback.restore_best(
                "the fast queue's budget was spent without the tests passing"
            )
            if restored is not None:
                record.notes.append("restored the best checkpoint")
                note = restored.text + " "
        if record.name == "rescue" and self.rescue is not None:
            from devloop.parse.diffs import touched_paths  # the eval layer's package: loaded only when used

            report = self.feedback.last_report
            output = "\n".join([report.log if report is not None else "", self._last_output])
            results = self.rescue.apply(output, edited_files=touched_paths(self._last_patch))
            record.notes += [f"{r.rule}: {r.action}{'' if r.applied else ' (not applied)'}" for r in results]
            text = RescueEngine.feedback(results)
            rescue = text + "\n" if text else "No rescue rule matched the last output. "
        self._emit(
            "queue_start", queue=record.name, status="started", budget=record.budget, notes=record.notes
        )
        nudge = NUDGES[record.name].format(budget=record.budget, restored=note, rescue=rescue)
        return Inject(nudge) if restored is None else Restore(nudge, restored.patch)

    def _close(self) -> QueueRecord | None:
        """End the current queue (its time and queue_end event); the next queue, or None after the last."""
        record = self._current
        if record is None:
            return None
        self._current = None
        record.seconds = round(time.monotonic() - self._started, 3)
        self._emit(
            "queue_end",
            queue=record.name,
            status=record.outcome,
            spent=record.spent,
            budget=record.budget,
            tokens=record.tokens,
        )
        index = self.records.index(record)
        return self.records[index + 1] if index + 1 < len(self.records) else None

    def _final_stop(self) -> Stop:
        """How the run ends when the queues are done: green, or spent with the tests failing."""
        green = self._green()
        self.needs_review = self._ran_rescue and not green
        last = next(r for r in reversed(self.records) if r.outcome != "skipped")
        if green:
            return Stop(ExitStatus.FINISHED, f"the tests pass after queue {last.name}")
        spec = ",".join(f"{r.name}:{r.budget}" for r in self.records)
        label = " (needs_review)" if self.needs_review else ""
        return Stop(ExitStatus.MAX_ITERATIONS, f"queues {spec} spent and the tests still fail{label}")

    def result_fields(self) -> dict[str, Any]:
        """{"queues": [{"name", "budget", "spent", "outcome", "tokens", "seconds", "notes"}], "needs_review"}."""
        return {
            "queues": [
                {
                    "name": r.name,
                    "budget": r.budget,
                    "spent": r.spent,
                    "outcome": r.outcome,
                    "tokens": r.tokens,
                    "seconds": r.seconds,
                    "notes": r.notes,
                }
                for r in self.records
            ],
            "needs_review": self.needs_review,
        }
