"""FeedbackLoop: the feedback parts of one run, built from the settings, and what the session calls.

Integration (devloop.session), in order:
    rules = check_feedback(settings)                      # before anything is created: bad flags fail here
    loop = build_feedback(settings, workspace=ws, runtime=runtime, out_dir=output, rules=rules)  # None: off
    model = loop.instrument(model) if loop else model      # model latency into the metrics
    agent = Agent(..., hooks=loop.hooks if loop else [])   # the test hook, then the queues
    stop = agent.run(...); loop.minimize(ws) if --minimize and finished
    finally: fields = loop.result_fields(); loop.close()   # merge fields into result.json
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.feedback.base import TestRunner
from devloop.feedback.candidates import forget_bytecode
from devloop.feedback.checkpoints import Checkpoints
from devloop.feedback.events import EventLog
from devloop.feedback.hook import FeedbackHook
from devloop.feedback.livediff import DiffStreamer
from devloop.feedback.metrics import Metrics
from devloop.feedback.queues import QueuePolicy, parse_queues
from devloop.feedback.rescue import RescueContext, RescueEngine, RuleError, Rules, load_rules
from devloop.feedback.runners import make_runner, runner_kind
from devloop.feedback.selection import TestSelector
from devloop.feedback.tokens import tokenizer_name
from devloop.hooks import StepHook
from devloop.models.base import Model
from devloop.runtime.base import Runtime
from devloop.types import Completion, SamplingParams
from devloop.workspace import Workspace

EVENTS_FILE = "events.jsonl"


class TimedModel:
    """A Model that records each completion's latency in the run's metrics."""

    def __init__(self, inner: Model, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.name = inner.name

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> Completion:
        t0 = time.monotonic()
        try:
            return self.inner.complete(messages, tools, params)
        finally:
            self.metrics.model_latency.observe(time.monotonic() - t0)

    def close(self) -> None:
        self.inner.close()


@dataclass
class FeedbackLoop:
    """The run's test runner, selector, checkpoints, event log, metrics and live diff, wired into one hook."""

    hook: FeedbackHook
    events: EventLog
    metrics: Metrics
    checkpoints: Checkpoints
    selector: TestSelector
    runner: TestRunner | None
    settings: Any
    hooks: list[StepHook] = field(default_factory=list)
    queues: QueuePolicy | None = None

    @property
    def retries_left(self) -> int:
        """Rollbacks and re-attempts still allowed by --max-retry."""
        return max(0, self.hook.max_retry - self.hook.rollbacks)

    def instrument(self, model: Model) -> Model:
        """`model`, timed into the metrics' model latency histogram."""
        return TimedModel(model, self.metrics)

    def result_fields(self) -> dict[str, Any]:
        """Extra result.json fields: test status and counts, checkpoints, rollbacks, where the events are."""
        return {
            **self.hook.result_fields(),
            "events_path": str(self.events.path) if self.events.path else None,
            "metrics_port": self.metrics.port,
            "summary_tokenizer": tokenizer_name(),
            **(self.queues.result_fields() if self.queues is not None else {}),
        }

    def minimize(self, workspace: Workspace) -> dict[str, Any]:
        """--minimize: shrink the final diff keeping the same tests' statuses (delta debugging)."""
        from devloop.feedback.minimize import minimize

        if self.runner is None:
            return {"skipped": "no test hook (--hook) to keep the tests' statuses by"}
        if not self.hook.last_tests and self.hook.last_tests is not None:
            return {"skipped": "no tests ran in this run"}
        result = minimize(
            workspace.root,
            workspace.diff(),
            self.runner,
            self.hook.last_tests or [],
            timeout=self.settings.timeout_test,
            current_diff=workspace.diff,
            workspace=workspace,
        )
        return result.to_json()

    def close(self) -> None:
        """Stop the metrics server and close events.jsonl (idempotent)."""
        self.metrics.close()
        self.events.close()


def check_feedback(settings: Any) -> Rules | None:
    """The rescue rules --queues needs, checked before anything of the run is created; None without
    --queues. ValueError with one line when --queues lacks a hook or a rules file is bad."""
    if not settings.queues:
        return None
    if not settings.hook:
        raise ValueError(
            "--queues needs a test hook (--hook pytest|jest|CMD) to tell when the tests are green"
        )
    try:
        return load_rules(settings.rules)
    except RuleError as e:
        raise ValueError(str(e)) from None


def build_feedback(
    settings: Any,
    *,
    workspace: Workspace,
    runtime: Runtime,
    out_dir: Path | None,
    rules: Rules | None = None,
) -> FeedbackLoop | None:
    """The feedback loop for a run, or None when no feedback flag is set. `settings` has FeedbackSettings'
    fields (RunSettings does); `rules` (from check_feedback) turns the queues on. Raises OSError when the
    metrics port cannot be bound."""
    if not settings.feedback_enabled():
        return None
    metrics = Metrics(settings.metrics_port)
    events = EventLog(out_dir / EVENTS_FILE if out_dir is not None else None, listeners=[metrics.on_event])
    runner = make_runner(settings.hook, runtime, workspace.root) if settings.hook else None
    selector = TestSelector(
        workspace.root,
        kind=runner_kind(settings.hook) if settings.hook else "pytest",
        scope=settings.hook_scope,
    )
    checkpoints = Checkpoints(workspace)
    tokenizer_name()  # load the tokenizer now, not while the first summary is awaited
    streamer = DiffStreamer(settings.stream_diff) if settings.stream_diff else None
    hook = FeedbackHook(
        runner,
        selector,
        checkpoints,
        events,
        metrics,
        streamer,
        timeout_test=settings.timeout_test,
        summary_tokens=settings.summary_tokens,
        rollback_threshold=settings.rollback_threshold,
        max_retry=settings.max_retry,
        forget_bytecode=lambda patches: forget_bytecode(workspace.root, patches, workspace._executor),
    )
    loop = FeedbackLoop(hook, events, metrics, checkpoints, selector, runner, settings, hooks=[hook])
    if rules is not None and settings.queues:
        context = RescueContext(workspace.root, runtime=runtime, checkpoints=checkpoints, events=events)
        loop.queues = QueuePolicy(loop, RescueEngine(rules, context), parse_queues(settings.queues))
        loop.hooks.append(loop.queues)
    return loop
