"""What the agent loop says to its hooks and what they may answer.

After each step the loop hands every hook a `StepInfo`, whose `stop` says how the run ends after this
step unless someone acts (the model finished, too many format errors, a limit). A hook answers with an
action, or None:

- `Inject(text)`: append text to the next request (a failure summary, a queue's instructions);
- `Restore(text, patch)`: the hook restored the workspace to a checkpoint (whose diff is `patch`); the
  model is told `text`, and the next step's change is judged against the restored tree;
- `Resume(text)`: overrule the model's finish (the tests still fail); the run goes on and the model is
  told `text`;
- `Stop(status, reason)`: end the run after this step.

A hook may also answer with several actions (a list), carried out in order. Hooks act in order, each
seeing what the earlier ones did; the limits (`RunLimits`) act last.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from devloop.types import Observation, ToolCall, Usage


class ExitStatus(StrEnum):
    """How a run ended, as result.json records it."""

    FINISHED = "finished"
    MAX_ITERATIONS = "max_iterations"
    TOKEN_LIMIT = "token_limit"
    TIME_LIMIT = "time_limit"
    FORMAT_ERRORS = "format_errors"  # consecutive replies without a valid tool call
    MODEL_ERROR = "model_error"  # retries exhausted, auth, context length
    RUNTIME_ERROR = "runtime_error"  # the runtime or devloop itself failed
    INTERRUPTED = "interrupted"  # Ctrl-C


class Stop(Exception):
    """Ends the run with an exit status: raised inside the loop, or returned by a hook as its action."""

    def __init__(self, status: ExitStatus | str, reason: str = "") -> None:
        super().__init__(reason or status)
        self.status = ExitStatus(status)
        self.reason = reason


@dataclass(frozen=True)
class Inject:
    """Append `text` to the next model request."""

    text: str


@dataclass(frozen=True)
class Restore:
    """The workspace was restored to a checkpoint whose diff is `patch`; the model is told `text`."""

    text: str
    patch: str


@dataclass(frozen=True)
class Resume:
    """Overrule the model's finish: the run goes on, and the model is told `text`."""

    text: str


Action = Inject | Restore | Resume | Stop
Actions = Action | Sequence[Action]


@dataclass
class StepInfo:
    """What the progress display and the hooks see after each step."""

    step: int
    calls: list[ToolCall]
    observations: list[Observation]
    usage: Usage
    elapsed_s: float  # since the run started
    format_error: str | None = None
    patch: str = ""  # the workspace diff after this step
    changed: bool = False  # whether the step changed the workspace (the patch differs from the last step's)
    stop: Stop | None = None  # how the run ends after this step unless a hook acts
    total_tokens: int = 0  # prompt + completion tokens over the run so far
    format_errors: int = 0  # consecutive steps with a format error, this one included
    feedback: list[str] = field(default_factory=list)  # what hooks added to the next request


class StepHook(Protocol):
    """A behaviour plugged into the loop. Hooks that subclass this get no-op defaults."""

    def before_run(self) -> Actions | None:
        """Before the first step; an Inject is appended to the task message."""
        return None

    def after_step(self, info: StepInfo) -> Actions | None:
        """After each step (patch and `changed` are set); see the module docstring."""
        return None

    def after_run(self, stop: Stop) -> None:
        """Once, with how the run ended (also when it ended in an exception, which is then re-raised)."""
        return None


@dataclass
class RunLimits(StepHook):
    """The run's limits, acting after every step unless the step already ends the run."""

    max_iterations: int = 50
    max_tokens_total: int | None = None
    time_limit: float | None = None
    max_format_errors: int = 3
    started: float = field(default_factory=time.monotonic)  # Agent.run resets it as the run begins

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def after_step(self, info: StepInfo) -> Stop | None:
        if info.stop is not None:
            return None
        if info.format_errors >= self.max_format_errors:
            return Stop(
                ExitStatus.FORMAT_ERRORS,
                f"{info.format_errors} consecutive replies without a valid tool call: {info.format_error}",
            )
        if info.step >= self.max_iterations:
            return Stop(ExitStatus.MAX_ITERATIONS, f"reached --max-iterations {self.max_iterations}")
        if self.max_tokens_total is not None and info.total_tokens >= self.max_tokens_total:
            return Stop(
                ExitStatus.TOKEN_LIMIT,
                f"used {info.total_tokens} tokens (--max-tokens-total {self.max_tokens_total})",
            )
        elapsed = self.elapsed()
        if self.time_limit is not None and elapsed >= self.time_limit:
            return Stop(ExitStatus.TIME_LIMIT, f"ran {elapsed:.0f} s (--time-limit {self.time_limit:g})")
        return None
