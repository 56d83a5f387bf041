"""The agent loop: query the model, parse its tool calls, run them, append observations, until a stop.

Everything else (model, format, tools, runtime, workspace, trajectory) is a collaborator passed in.
Control flow uses one exception, `Stop`, carrying the exit status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from devloop.formats.base import FormatError, ToolFormat
from devloop.models.base import Model
from devloop.tools.base import ToolContext
from devloop.trajectory import Trajectory
from devloop.types import Completion, Observation, SamplingParams, ToolCall, Usage

EXIT_STATUSES = ("finished", "max_iterations", "token_limit", "time_limit", "format_errors",
                 "model_error", "runtime_error", "interrupted")  # fmt: skip


class Stop(Exception):
    def __init__(self, status: str, reason: str = ""):
        super().__init__(reason or status)
        self.status, self.reason = status, reason


@dataclass
class Limits:
    max_iterations: int = 50
    max_tokens_total: int | None = None
    time_limit: float | None = None
    max_format_errors: int = 3


@dataclass
class StepInfo:
    """What the progress display and the feedback loop see after each step."""

    step: int
    calls: list[ToolCall]
    observations: list[Observation]
    usage: Usage
    elapsed_s: float
    format_error: str | None = None
    patch: str = ""  # the workspace diff after this step
    changed: bool = False  # whether the step changed the workspace (the patch differs from the last step's)
    feedback: list[str] = field(default_factory=list)  # what hooks added to the next request


class StepHook(Protocol):
    """Runs after each step (the feedback loop's test hook, checkpoints...). Returned text is appended to the
    last message, so the model sees it in the very next request. May raise Stop."""

    def after_step(self, info: StepInfo) -> str | None: ...


@dataclass
class Agent:
    model: Model
    fmt: ToolFormat
    toolbox: Any  # devloop.tools.registry.Toolbox
    ctx: ToolContext
    params: SamplingParams
    limits: Limits
    trajectory: Trajectory
    patch: Callable[[], str]  # the workspace diff as it stands
    on_step: Callable[[StepInfo], None] | None = None
    hooks: list[StepHook] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    format_errors: int = 0
    started: float = field(default_factory=time.monotonic)
    _specs: list[Any] = field(default_factory=list, init=False, repr=False)
    _api_tools: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _last_patch: str = field(default="", init=False, repr=False)
    _pending: tuple[Future[tuple[str, float]], dict[str, Any]] | None = field(
        default=None, init=False, repr=False
    )
    _executor: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def start(self, system: str, task: str) -> None:
        """Begin the conversation; then call step() until it raises Stop (run() does exactly that)."""
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
        self._specs = self.toolbox.specs()
        self._api_tools = self.toolbox.openai_tools() if self.fmt.native else None

    def run(self, system: str, task: str) -> Stop:
        self.start(system, task)
        try:
            while True:
                self.step()
        except Stop as stop:
            return stop
        finally:
            self.flush()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def step(self) -> None:
        self._check_limits()
        t0 = time.monotonic()
        completion = self._complete()
        t_model = time.monotonic() - t0
        self.flush()  # the previous step's patch was computed while the model replied; tools may now change files
        self.steps += 1
        self.usage.prompt_tokens += completion.usage.prompt_tokens
        self.usage.completion_tokens += completion.usage.completion_tokens
        calls: list[ToolCall] = []
        observations: list[Observation] = []
        error: str | None = None
        try:
            calls = self.fmt.parse(completion, self._specs)
            for i, call in enumerate(calls):
                try:
                    with self._commands_end_by_the_deadline():
                        observations.append(self.toolbox.execute(call, self.ctx))
                except FormatError as e:
                    error = str(e)
                    observations.append(Observation(error, is_error=True))
                    skipped = "Not executed: an earlier call in the same reply was invalid."
                    observations += [Observation(skipped, is_error=True) for _ in calls[i + 1 :]]
                    break
                if observations[-1].finished:
                    calls = calls[: i + 1]
                    break
            self.messages += self.fmt.history(completion, calls, observations)
        except FormatError as e:
            error = str(e)
            if completion.finish_reason == "length":
                error = (
                    "Your reply was cut off by the completion token limit before the tool call was complete; "
                    "keep the reasoning short and make one call per reply. " + error
                )
            self.messages += self.fmt.history(completion, [], [Observation(error, is_error=True)])
        t_tools = time.monotonic() - t0 - t_model
        self.format_errors = self.format_errors + 1 if error else 0
        self._record(completion, calls, observations, error, t_model, t_tools)
        if any(o.finished for o in observations):
            raise Stop("finished", next(o.text for o in observations if o.finished))
        if self.format_errors >= self.limits.max_format_errors:
            raise Stop(
                "format_errors",
                f"{self.format_errors} consecutive replies without a valid tool call: {error}",
            )

    def _remaining(self) -> float | None:
        """Seconds left under --time-limit, or None without one."""
        if self.limits.time_limit is None:
            return None
        return self.limits.time_limit - (time.monotonic() - self.started)

    @contextmanager
    def _commands_end_by_the_deadline(self) -> Iterator[None]:
        """Under --time-limit, a command's timeout is cut to the time left (tools read the ceiling)."""
        remaining, extra = self._remaining(), self.ctx.extra
        if remaining is None:
            yield
            return
        had = "max_command_timeout" in extra
        ceiling = extra.get("max_command_timeout")
        extra["max_command_timeout"] = max(0.1, min(remaining, ceiling if ceiling is not None else remaining))
        try:
            yield
        finally:
            if had:
                extra["max_command_timeout"] = ceiling
            else:
                extra.pop("max_command_timeout", None)

    def _complete(self) -> Completion:
        """The model's reply; under --time-limit, given up on (Stop) when the time runs out mid-reply. The
        abandoned request ends when the run closes the model's client."""
        remaining = self._remaining()
        if remaining is None:
            return self.model.complete(self.messages, self._api_tools, self.params)
        box: list[Any] = []

        def call() -> None:
            try:
                box.append(self.model.complete(self.messages, self._api_tools, self.params))
            except BaseException as exc:  # handed to the loop's thread below
                box.append(exc)

        worker = threading.Thread(target=call, daemon=True, name="devloop-model-call")
        worker.start()
        worker.join(max(remaining, 0.0))
        if not box:
            raise Stop(
                "time_limit",
                f"the model had not replied when --time-limit {self.limits.time_limit:g} s ran out",
            )
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]  # type: ignore[no-any-return]

    def _check_limits(self) -> None:
        lim = self.limits
        if self.steps >= lim.max_iterations:
            raise Stop("max_iterations", f"reached --max-iterations {lim.max_iterations}")
        if lim.max_tokens_total is not None and self.usage.total >= lim.max_tokens_total:
            raise Stop(
                "token_limit", f"used {self.usage.total} tokens (--max-tokens-total {lim.max_tokens_total})"
            )
        elapsed = time.monotonic() - self.started
        if lim.time_limit is not None and elapsed >= lim.time_limit:
            raise Stop("time_limit", f"ran {elapsed:.0f} s (--time-limit {lim.time_limit:g})")

    def _record(
        self,
        completion: Completion,
        calls: list[ToolCall],
        observations: list[Observation],
        error: str | None,
        t_model: float,
        t_tools: float,
    ) -> None:
        """Write the step to the trajectory (with the patch as it stands) and tell hooks and on_step.

        Without hooks nothing needs the patch before the next model reply, so it is computed in the
        background while the model thinks, and the step's line is written once it is ready (flush())."""
        event: dict[str, Any] = {
            "step": self.steps, "completion": completion, "calls": calls, "observations": observations,
            "format_error": error, "usage": completion.usage, "total_usage": Usage(**vars(self.usage)),
            "timings": {"model_s": round(t_model, 4), "tools_s": round(t_tools, 4)},
        }  # fmt: skip
        info = StepInfo(
            self.steps, calls, observations, completion.usage, time.monotonic() - self.started, error
        )
        if not self.hooks:
            self._pending = (self._background().submit(_timed, self.patch), event)
            if self.on_step:
                self.on_step(info)
            return
        t0 = time.monotonic()
        info.patch = self.patch()
        t_patch = time.monotonic() - t0
        info.changed = info.patch != self._last_patch
        self._last_patch = info.patch
        stop: Stop | None = None
        for hook in self.hooks:
            try:
                text = hook.after_step(info)
            except Stop as s:
                stop = s
                break
            if text:
                info.feedback.append(text)
                self.messages[-1] = {
                    **self.messages[-1],
                    "content": f"{self.messages[-1]['content']}\n\n{text}",
                }
        event["timings"] |= {
            "patch_s": round(t_patch, 4),
            "hooks_s": round(time.monotonic() - t0 - t_patch, 4),
        }
        self.trajectory.write(
            "step", **event, n_messages=len(self.messages), feedback=info.feedback, patch=info.patch
        )
        if self.on_step:
            self.on_step(info)
        if stop is not None:
            raise stop

    def flush(self) -> None:
        """Write the step whose patch is still being computed, if any (run() does this before it returns)."""
        if self._pending is None:
            return
        future, event = self._pending
        self._pending = None
        try:
            patch, t_patch = future.result()
        except Exception as e:  # the trajectory still gets its step
            patch, t_patch = "", 0.0
            event["patch_error"] = f"{type(e).__name__}: {e}".splitlines()[0]
        event["timings"]["patch_s"] = round(t_patch, 4)
        self._last_patch = patch
        self.trajectory.write("step", **event, n_messages=len(self.messages), feedback=[], patch=patch)

    def _background(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devloop-patch")
        return self._executor


def _timed(fn: Callable[[], str]) -> tuple[str, float]:
    t0 = time.monotonic()
    return fn(), time.monotonic() - t0
