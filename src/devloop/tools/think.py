"""`think`: a scratchpad call that lets the model reason at length without side effects."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import load_description, make_spec
from devloop.types import Observation

THOUGHT_LOGGED = "Your thought has been logged."


class ThinkArgs(BaseModel):
    """Arguments of `think`."""

    model_config = ConfigDict(extra="forbid")

    thought: str = Field(description="The thought to record: reasoning, a plan, or hypotheses to check.")


class ThinkTool:
    """The `think` tool: records the thought (in the trajectory, via the call itself) and does nothing."""

    name: ClassVar[str] = "think"
    Args: ClassVar[type[BaseModel]] = ThinkArgs

    def spec(self) -> ToolSpec:
        """Name, description (from the .md file) and argument schema, as the model sees them."""
        return make_spec(self.name, ThinkArgs, load_description("think"))

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        return Observation(text=THOUGHT_LOGGED)
