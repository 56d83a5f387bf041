"""A run's settings as nested groups, one per collaborator the session builds from them.

The flat RunSettings (devloop.config) stays the contract: its keys are the devloop.toml keys, the
DEVLOOP_* variables and the `devloop run` flags, and it is where each value is validated. Each group
here names the flat keys it takes (its field names are those keys), so `SessionSettings.of(flat)` is the
whole mapping, and a key that belongs to no group is an error (tests/core/test_session_settings.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from devloop.feedback.settings import FeedbackSettings


class _Group:
    @classmethod
    def of(cls, flat: Any) -> Self:
        """This group's keys read from `flat` (a RunSettings, or anything with those attributes)."""
        return cls(**{f.name: getattr(flat, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelSettings(_Group):
    """-> the Model client (devloop.models.get_model), and the condenser fitting the conversation to its
    context window (devloop.condense)."""

    model: str
    base_url: str | None
    api_key_env: str | None
    max_retries: int
    request_timeout: float
    condense: bool
    context_window: int | None
    condense_at: float


@dataclass(frozen=True)
class SamplingSettings(_Group):
    """-> SamplingParams, which the tool-call format then tunes (ToolFormat.tune)."""

    temperature: float
    top_p: float | None
    max_tokens: int | None
    seed: int | None


@dataclass(frozen=True)
class LimitSettings(_Group):
    """-> the loop's RunLimits hook."""

    max_iterations: int
    max_tokens_total: int | None
    time_limit: float | None
    max_format_errors: int


@dataclass(frozen=True)
class ToolSettings(_Group):
    """-> the format, the prompts, the policy-gated toolbox and its ToolContext."""

    tool_format: str
    prompt_dir: Path | None
    command_timeout: float
    output_cap: int
    policy: list[Path]
    retrieve: int
    mcp_servers: dict[str, Any]  # name -> devloop.tools.mcp.McpServerConfig


@dataclass(frozen=True)
class SandboxSettings(_Group):
    """-> the runtime (where commands run, with what limits and environment) and the workspace."""

    sandbox: str
    allow_network: bool
    env: list[str]
    pass_env: list[str]
    memory_limit: str
    disk_limit: str
    keep_workspace: bool
    python: Path | None
    venv: Path | None


@dataclass(frozen=True)
class SessionSettings:
    model: ModelSettings
    sampling: SamplingSettings
    limits: LimitSettings
    tools: ToolSettings
    sandbox: SandboxSettings
    feedback: FeedbackSettings  # -> the feedback loop (test hook, checkpoints, queues, minimisation)

    @classmethod
    def of(cls, flat: Any) -> SessionSettings:
        feedback = {name: getattr(flat, name) for name in FeedbackSettings.model_fields}
        return cls(
            model=ModelSettings.of(flat),
            sampling=SamplingSettings.of(flat),
            limits=LimitSettings.of(flat),
            tools=ToolSettings.of(flat),
            sandbox=SandboxSettings.of(flat),
            feedback=FeedbackSettings.model_construct(**feedback),  # validated already, as part of `flat`
        )


def grouped_keys() -> dict[str, str]:
    """Every flat key -> the name of the group that takes it."""
    groups = {
        "model": ModelSettings,
        "sampling": SamplingSettings,
        "limits": LimitSettings,
        "tools": ToolSettings,
        "sandbox": SandboxSettings,
    }
    keys = {f.name: group for group, cls in groups.items() for f in dataclasses.fields(cls)}
    return keys | {name: "feedback" for name in FeedbackSettings.model_fields}
