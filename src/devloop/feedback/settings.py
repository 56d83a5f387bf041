"""The feedback loop's settings: one field per `devloop run/eval` feedback flag (flag name = field name with
dashes). `RunSettings` inherits this model, so each field is also a devloop.toml key and a DEVLOOP_* variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

HookScope = Literal["related", "all"]


class FeedbackSettings(BaseModel):
    """Test hook, checkpoints and rollback, queues, rescue rules, minimisation, live diff and metrics."""

    # --- test hook, summaries, checkpoints, observability --------------------------------------------
    hook: str | None = None
    """Tests to run after every step that changed files: pytest, jest, or any shell command ("CMD")."""
    timeout_test: float = Field(60.0, gt=0)
    """Seconds one test run may take; then it is killed with everything it started."""
    hook_scope: HookScope = "related"
    """related: the tests the agent ran or wrote plus those related to changed files; all: the whole suite."""
    summary_tokens: int = Field(512, ge=32)
    """Token budget of the failure summary put into the next model request."""
    rollback_threshold: int = Field(3, ge=1)
    """Consecutive file-changing steps without test improvement before the best checkpoint is restored."""
    max_retry: int = Field(20, ge=0)
    """Bound on rollbacks and re-attempts in one run."""
    stream_diff: str | None = None
    """Show the cumulative diff as it changes: "-" for the terminal, or a file rewritten on each change."""
    metrics_port: int | None = Field(None, ge=0, le=65535)
    """Serve Prometheus metrics on this port (0 = any free port) for the run's duration."""

    # --- queues, rescue rules, minimisation ----------------------------------------------------------
    queues: str | None = None
    """Queue budgets in steps, e.g. fast:3,deep:10,rescue:7."""
    rules: Path | None = None
    """Extra rescue rules (TOML, or YAML with PyYAML installed) added to the shipped ones."""
    minimize: bool = False
    """After a run whose tests pass, shrink the diff by delta debugging while keeping the same tests green."""

    @field_validator("queues")
    @classmethod
    def _queues_spec(cls, value: str | None) -> str | None:
        if value is not None:
            from devloop.feedback.queues import parse_queues  # the queue policy is loaded only when used

            try:
                parse_queues(value)
            except ValueError as e:
                raise ValueError(str(e).removeprefix("--queues: ")) from None
        return value

    @field_validator("hook")
    @classmethod
    def _hook_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be pytest, jest or a shell command, not empty")
        return value

    @field_validator("stream_diff")
    @classmethod
    def _stream_target(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError('must be "-" (the terminal) or a file path')
        return value

    def feedback_enabled(self) -> bool:
        """Whether any flag of the feedback loop asks for it to be built."""
        return any(
            (
                self.hook,
                self.queues,
                self.rules,
                self.minimize,
                self.stream_diff,
                self.metrics_port is not None,
            )
        )
