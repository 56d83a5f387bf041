"""The format seam: how tools are shown to the model and how its reply becomes ToolCalls."""

from __future__ import annotations

from typing import Any, Protocol

from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall


class FormatError(Exception):
    """The reply held no parseable call, an unknown tool, or invalid arguments.

    The message is shown to the model verbatim as an observation, so it must say exactly what was
    wrong and what shape was expected.
    """


class ToolFormat(Protocol):
    name: str
    # True when tools travel in the API's `tools` field and calls come back as `tool_calls`.
    native: bool

    def render_tools(self, tools: list[ToolSpec]) -> str:
        """Text appended to the system prompt describing the tools and the call syntax ('' for native)."""
        ...

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        """The calls in the completion, in order. Raises FormatError (see above)."""
        ...

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        """Messages to append to the conversation for this step: the assistant message, then the
        observations (`tool` role messages for native, one `user` message for text formats)."""
        ...
