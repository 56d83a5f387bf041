"""The tool seam: a name, a pydantic argument model (its JSON schema is what the model sees), and run()."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from devloop.runtime.base import Runtime
from devloop.types import Observation, ToolCall

# Arguments some models add from newer OpenHands tool schemas (e.g. `security_risk: LOW|MEDIUM|HIGH`).
# They change nothing here, so they are accepted and dropped rather than costing the model a format error.
TOLERATED_EXTRA_ARGS = frozenset({"security_risk"})


@dataclass
class ToolSpec:
    """What a format needs to present a tool: name, description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolContext:
    """What a tool may touch: the runtime (shell) and the workspace root on the host."""

    runtime: Runtime
    root: Path
    command_timeout: float = 120.0
    output_cap: int = 10_000
    extra: dict[str, Any] = field(default_factory=dict)
    # Root-relative paths the host-side editor never writes into, through a link included (an in-place
    # repository's .git: a hook or config there would run in the user's next git command on the host).
    protected: tuple[str, ...] = ()


class Tool(Protocol):
    name: ClassVar[str]
    Args: ClassVar[type[BaseModel]]

    def spec(self) -> ToolSpec: ...

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation: ...


class ToolExecutor(Protocol):
    """What the agent needs of its tools: their specs, and running one call (the Toolbox, or the policy
    gate in front of it)."""

    def specs(self) -> list[ToolSpec]:
        """Each tool's spec, as formats present it to the model."""
        ...

    def openai_tools(self) -> list[dict[str, Any]]:
        """The OpenAI `tools` request field for these tools."""
        ...

    def execute(self, call: ToolCall, ctx: ToolContext) -> Observation:
        """Run the call. Raises FormatError for an unknown tool or invalid arguments."""
        ...
