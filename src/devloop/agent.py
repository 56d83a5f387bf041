"""The agent loop: query the model, parse its tool calls, run them, let the hooks act, until a stop.

Everything else (model, format, tools, runtime, workspace, trajectory) is a collaborator passed in. The
loop has one driver, `Agent.run`; behaviours plug into it as hooks (devloop.hooks): after each step a hook
returns an action (inject text, report a restored checkpoint, overrule a finish, stop), and the limits are
the last hook. `Stop` carries the exit status, raised inside the loop or returned by a hook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from devloop.condense import Compaction, Condenser, is_context_error
from devloop.formats.base import FormatError, ToolFormat
from devloop.hooks import Actions, ExitStatus, Inject, Restore, Resume, RunLimits, StepHook, StepInfo, Stop
from devloop.models.base import Model, ModelError
from devloop.tools.base import ToolContext, ToolExecutor, ToolSpec
from devloop.trajectory import Trajectory
from devloop.types import Completion, Observation, SamplingParams, ToolCall, Usage

_T = TypeVar("_T")

__all__ = ["Agent", "ExitStatus", "Inject", "Restore", "Resume", "RunLimits", "StepHook", "StepInfo", "Stop"]


@dataclass
class Agent:
    model: Model
    fmt: ToolFormat
    toolbox: ToolExecutor
    ctx: ToolContext
    params: SamplingParams
    limits: RunLimits
    trajectory: Trajectory
    patch: Callable[[], str]  # the workspace diff as it stands
    on_step: Callable[[StepInfo], None] | None = None
    # The diff when it can be told at once (the workspace's watch says nothing changed since it was last
    # computed), else None: such a step's line is written at once instead of after the background's.
    patch_now: Callable[[], str | None] | None = None
    hooks: list[StepHook] = field(default_factory=list)
    condenser: Condenser | None = None  # --condense: the conversation is compacted to fit the window
    # Set by another thread to interrupt the run (chat's Ctrl-C): a model request is abandoned at once, a
    # running command stopped by its runtime; the run ends with KeyboardInterrupt, as on SIGINT.
    cancel: threading.Event | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    format_errors: int = 0
    _specs: list[ToolSpec] = field(default_factory=list, init=False, repr=False)
    _api_tools: list[dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _last_patch: str = field(default="", init=False, repr=False)
    _pending: tuple[Future[tuple[str, float]], dict[str, Any]] | None = field(
        default=None, init=False, repr=False
    )
    _executor: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _condensed: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)

    def run(self, system: str, task: str) -> Stop:
        """The whole conversation; the Stop that ended it (a model error is one too, `model_error`)."""
        self.limits.started = time.monotonic()
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
        self._specs = self.toolbox.specs()
        self._api_tools = self.toolbox.openai_tools() if self.fmt.native else None
        try:
            for hook in self.hooks:
                self._act(hook.before_run(), None)
            stop = None
            while stop is None:
                stop = self._step()
        except Stop as raised:
            stop = raised
        except ModelError as e:
            stop = Stop(ExitStatus.MODEL_ERROR, e.reason)
        except BaseException as e:  # the hooks still learn how the run ended; the caller records it
            interrupted = isinstance(e, KeyboardInterrupt)
            self._end(Stop(ExitStatus.INTERRUPTED if interrupted else ExitStatus.RUNTIME_ERROR, str(e)))
            raise
        finally:
            self.flush()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
        self._end(stop)
        return stop

    def _step(self) -> Stop | None:
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
                    self._check_cancel()
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
        finished = next((o.text for o in observations if o.finished), None)
        info = StepInfo(self.steps, calls, observations, completion.usage, self.limits.elapsed(), error)
        info.total_tokens, info.format_errors = self.usage.total, self.format_errors
        info.stop = Stop(ExitStatus.FINISHED, finished) if finished is not None else None
        return self._record(info, completion, t_model, t_tools)

    def _act(self, action: Actions | None, info: StepInfo | None) -> None:
        """Carry out a hook's action(s); `info` None before the first step (where a Stop ends the run)."""
        if action is None:
            return
        if not isinstance(action, Inject | Restore | Resume | Stop):
            for each in action:
                self._act(each, info)
            return
        if isinstance(action, Stop):
            if info is None:
                raise action
            info.stop = action
            return
        if isinstance(action, Resume) and info is not None:
            info.stop = None
        if isinstance(action, Restore):
            self._last_patch = action.patch  # the next step's change is judged against the restored tree
        if not action.text:
            return
        if info is not None:
            info.feedback.append(action.text)
        last = self.messages[-1]
        self.messages[-1] = {**last, "content": f"{last.get('content') or ''}\n\n{action.text}".lstrip()}

    def _end(self, stop: Stop) -> None:
        for hook in self.hooks:
            hook.after_run(stop)

    def _remaining(self) -> float | None:
        """Seconds left under --time-limit, or None without one."""
        if self.limits.time_limit is None:
            return None
        return self.limits.time_limit - self.limits.elapsed()

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
        """The model's reply; with a condenser, the conversation is compacted first when it nears the
        context window, and once more (then the request retried once) when the server refuses it as
        too long. A summary request is held to --time-limit as a reply is."""
        if self.condenser is None:
            return self._request(self._reply)
        condenser = self.condenser
        self._condense(self._request(lambda: condenser.fit(self.messages, self._api_tools, self.params)))
        try:
            completion = self._request(self._reply)
        except ModelError as e:
            if not is_context_error(e):
                raise
            why = e.reason
            self._condense(
                self._request(lambda: condenser.recover(self.messages, self._api_tools, self.params, why))
            )
            completion = self._request(self._reply)
        condenser.observe(self.messages, self._api_tools, completion.usage.prompt_tokens)
        return completion

    def _reply(self) -> Completion:
        return self.model.complete(self.messages, self._api_tools, self.params)

    def _condense(self, compaction: Compaction | None) -> None:
        """Take a compaction's messages; its record goes into the next step's trajectory line."""
        if compaction is None:
            return
        self.messages = compaction.messages
        self.usage.prompt_tokens += compaction.usage.prompt_tokens
        self.usage.completion_tokens += compaction.usage.completion_tokens
        self._condensed.append(compaction.record())

    def _request(self, ask: Callable[[], _T]) -> _T:
        """`ask()` (a model request); under --time-limit, given up on (Stop) when the time runs out
        mid-reply, and with `cancel`, as soon as it is set. The abandoned request ends when the run
        closes the model's client."""
        remaining = self._remaining()
        if remaining is None and self.cancel is None:
            return ask()
        self._check_cancel()
        box: list[_T | BaseException] = []

        def call() -> None:
            try:
                box.append(ask())
            except BaseException as exc:  # handed to the loop's thread below
                box.append(exc)

        worker = threading.Thread(target=call, daemon=True, name="devloop-model-call")
        worker.start()
        deadline = None if remaining is None else time.monotonic() + max(remaining, 0.0)
        while worker.is_alive() and (deadline is None or time.monotonic() < deadline):
            self._check_cancel()
            worker.join(0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic())))
        self._check_cancel()
        if not box:
            raise Stop(
                ExitStatus.TIME_LIMIT,
                f"the model had not replied when --time-limit {self.limits.time_limit:g} s ran out",
            )
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt

    def _record(self, info: StepInfo, completion: Completion, t_model: float, t_tools: float) -> Stop | None:
        """Let the hooks act on the step, write it to the trajectory (with the patch as it stands), tell
        on_step; the Stop that ends the run after it, if any.

        Without hooks nothing needs the patch before the next model reply, so it is computed in the
        background while the model thinks, and the step's line is written once it is ready (flush())."""
        event: dict[str, Any] = {
            "step": self.steps,
            "completion": completion,
            "calls": info.calls,
            "observations": info.observations,
            "format_error": info.format_error,
            "usage": completion.usage,
            "total_usage": Usage(**vars(self.usage)),
            "timings": {"model_s": round(t_model, 4), "tools_s": round(t_tools, 4)},
        }
        if self._condensed:
            event["condensed"], self._condensed = self._condensed, []
        if not self.hooks:
            self._act(self.limits.after_step(info), info)
            t0 = time.monotonic()
            known = self.patch_now() if self.patch_now is not None else None
            if known is not None:  # nothing to wait for: no thread's round trip for it either
                self._write_step(event, known, time.monotonic() - t0)
            else:
                self._pending = (self._background().submit(_timed, self.patch), event)
            if self.on_step:
                self.on_step(info)
            return info.stop
        t0 = time.monotonic()
        info.patch = self.patch()
        t_patch = time.monotonic() - t0
        info.changed = info.patch != self._last_patch
        self._last_patch = info.patch
        for hook in (*self.hooks, self.limits):
            try:
                self._act(hook.after_step(info), info)
            except Stop as raised:
                info.stop = raised
        event["timings"] |= {
            "patch_s": round(t_patch, 4),
            "hooks_s": round(time.monotonic() - t0 - t_patch, 4),
        }
        self.trajectory.write(
            "step", **event, n_messages=len(self.messages), feedback=info.feedback, patch=info.patch
        )
        if self.on_step:
            self.on_step(info)
        return info.stop

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
        self._write_step(event, patch, t_patch)

    def _write_step(self, event: dict[str, Any], patch: str, t_patch: float) -> None:
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
