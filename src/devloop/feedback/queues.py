"""Fast / Deep / Rescue queues: escalating budgets of agent steps, each with its own instructions.

`--queues fast:3,deep:10,rescue:7`. Fast asks for a quick local fix. If the tests are not green when its budget
is spent (or the model finishes with tests failing), Deep restores the best checkpoint so far and asks for a
cross-file investigation. Rescue applies the rescue rules to the last test output, tells the model what they
found and did, and gets the last budget; if the tests still fail the result is labelled `needs_review`.
The agent's global limits (--max-iterations, tokens, time) still apply to every step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from devloop.agent import Agent, Stop
from devloop.feedback.base import TestReport
from devloop.feedback.rules import RescueEngine
from devloop.harness.diffs import touched_paths
from devloop.models.base import ModelError

QUEUE_NAMES = ("fast", "deep", "rescue")

NUDGES = {
    "fast": "[queue fast: up to {budget} steps] Aim for a quick, local fix: change as little as needed where the "
            "failure points, run the failing test, and finish as soon as it passes.",
    "deep": "[queue deep: up to {budget} steps] The quick attempts did not make the tests pass. {restored}"
            "Investigate across files before editing: read the code the failing tests exercise and its callers, "
            "find the root cause, then fix it there.",
    "rescue": "[queue rescue: up to {budget} steps] The tests still fail. {rescue}Use this to finish the fix; "
              "if the tests still fail at the end, the result is marked for human review.",
}  # fmt: skip


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

    def restore_best(self, why: str) -> str | None:
        """Restore the best checkpoint; the message for the model, or None when there is none."""
        ...


class LoopFeedback:
    """QueueFeedback over devloop.feedback.loop.FeedbackLoop (its hook's report, checkpoints and rollback)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    @property
    def last_report(self) -> TestReport | None:
        return self.loop.hook.last_report  # type: ignore[no-any-return]

    def restore_best(self, why: str) -> str | None:
        # Checkpoints are only taken when the tests improved, so the last one is the best one.
        best = self.loop.checkpoints.last
        if best is None:
            return None
        return self.loop.hook.rollback(best, self.loop.hook.last_report, why=why)  # type: ignore[no-any-return]

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
    # green | not_green | finished_failing | skipped | the Stop status that ended the run (max_iterations, ...)
    outcome: str = "skipped"
    notes: list[str] = field(default_factory=list)


def start_agent(agent: Agent, system: str, task: str) -> None:
    """Prepare `agent` for step() calls as Agent.run would."""
    agent.start(system, task)


def _append(agent: Agent, text: str) -> None:
    """Put `text` at the end of the last message: the model sees it in the very next request."""
    last = agent.messages[-1]
    agent.messages[-1] = {**last, "content": f"{last.get('content') or ''}\n\n{text}".lstrip()}


class QueueRunner:
    """Drives `agent` through the queues; `result_fields()` gives what result.json records."""

    def __init__(
        self, agent: Agent, feedback: Any, rescue_engine: RescueEngine | None, queues: list[QueueSpec]
    ):
        self.agent = agent
        self.feedback = as_queue_feedback(feedback)
        self.rescue = rescue_engine
        self.queues = queues
        self.records = [QueueRecord(q.name, q.budget) for q in queues]
        self.needs_review = False

    def _green(self) -> bool:
        report = self.feedback.last_report
        return report is not None and report.green

    def _emit(self, kind: str, **fields: Any) -> None:
        emit = getattr(self.feedback, "emit", None)
        if callable(emit):
            emit(kind, **fields)

    def run(self, system: str, task: str) -> Stop:
        """Run the queues in order until the tests pass, the model finishes with nothing to judge, or a limit
        stops the run. Raises ModelError as Agent.run does (the queue is recorded first)."""
        start_agent(self.agent, system, task)
        stop: Stop | None = None
        ran_rescue = False
        try:
            for record in self.records:
                if record is not self.records[0] and self._green():
                    break  # an earlier queue got the tests green: the rest stay "skipped"
                ran_rescue = ran_rescue or record.name == "rescue"
                stop = self._run_queue(record)
                if stop is not None:
                    break
        finally:
            self.agent.flush()  # a step whose trajectory line is still pending
        green = self._green()
        self.needs_review = ran_rescue and not green
        if stop is not None:
            return stop
        last = next(r for r in reversed(self.records) if r.outcome != "skipped")
        if green:
            return Stop("finished", f"the tests pass after queue {last.name}")
        spec = ",".join(f"{r.name}:{r.budget}" for r in self.records)
        label = " (needs_review)" if self.needs_review else ""
        return Stop("max_iterations", f"queues {spec} spent and the tests still fail{label}")

    def _run_queue(self, record: QueueRecord) -> Stop | None:
        """Run one queue; a Stop that ends the whole run, or None to go on to the next queue."""
        agent = self.agent
        set_context = getattr(self.feedback, "set_context", None)
        if callable(set_context):
            set_context(queue=record.name)
        _append(agent, self._enter(record))
        self._emit(
            "queue_start", queue=record.name, status="started", budget=record.budget, notes=record.notes
        )
        steps0, tokens0, t0 = agent.steps, agent.usage.total, time.monotonic()
        stop: Stop | None = None
        try:
            for _ in range(record.budget):
                agent.step()
            record.outcome = "green" if self._green() else "not_green"
        except Stop as s:
            if s.status == "finished" and self.feedback.last_report is not None and not self._green():
                record.outcome = "finished_failing"  # the model is done but the tests are not: escalate
                _append(agent, "[queues] You finished, but the tests still fail; continuing.")
            else:
                record.outcome = "green" if s.status == "finished" and self._green() else s.status
                stop = s
        except ModelError:
            record.outcome = "model_error"
            raise
        finally:
            record.spent = agent.steps - steps0
            record.tokens = agent.usage.total - tokens0
            record.seconds = round(time.monotonic() - t0, 3)
            self._emit("queue_end", queue=record.name, status=record.outcome, spent=record.spent,
                       budget=record.budget, tokens=record.tokens)  # fmt: skip
        return stop

    def _enter(self, record: QueueRecord) -> str:
        """The queue's instructions, after its entry action (restore the best checkpoint, apply the rules)."""
        restored = rescue = ""
        if record.name == "deep":
            note = self.feedback.restore_best("the fast queue's budget was spent without the tests passing")
            if note:
                record.notes.append("restored the best checkpoint")
                restored = note + " "
        if record.name == "rescue" and self.rescue is not None:
            report = self.feedback.last_report
            output = "\n".join(
                [report.log if report is not None else "", str(self.agent.messages[-1].get("content") or "")]
            )
            results = self.rescue.apply(output, edited_files=touched_paths(self.agent.patch()))
            record.notes += [f"{r.rule}: {r.action}{'' if r.applied else ' (not applied)'}" for r in results]
            text = RescueEngine.feedback(results)
            rescue = text + "\n" if text else "No rescue rule matched the last output. "
        return NUDGES[record.name].format(budget=record.budget, restored=restored, rescue=rescue)

    def result_fields(self) -> dict[str, Any]:
        """{"queues": [{"name", "budget", "spent", "outcome", "tokens", "seconds", "notes"}], "needs_review"}."""
        return {
            "queues": [
                {"name": r.name, "budget": r.budget, "spent": r.spent, "outcome": r.outcome, "tokens": r.tokens,
                 "seconds": r.seconds, "notes": r.notes}
                for r in self.records
            ],
            "needs_review": self.needs_review,
        }  # fmt: skip
