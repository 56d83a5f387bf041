"""`finish`: the model's way of saying the task is done; the agent loop stops after this step."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import load_description, make_spec
from devloop.types import Observation


class FinishArgs(BaseModel):
    """Arguments of `finish`."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="A short summary of what was done and how it was verified.")


class FinishTool:
    """The `finish` tool: returns an observation with `finished=True` carrying the model's message."""

    name: ClassVar[str] = "finish"
    Args: ClassVar[type[BaseModel]] = FinishArgs

    def spec(self) -> ToolSpec:
        """Name, description (from the .md file) and argument schema, as the model sees them."""
        return make_spec(self.name, FinishArgs, load_description("finish"))

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        message = str(getattr(args, "message", ""))
        return Observation(text=message or "Finished.", finished=True, meta={"message": message})
