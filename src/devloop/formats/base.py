"""The format seam: how tools are shown to the model, how its reply becomes ToolCalls, and what the
format needs from the server's sampling."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from devloop.tools.base import ToolSpec
from devloop.types import (
    MAX_ERROR_CHARS,
    Completion,
    FormatError,
    Observation,
    SamplingParams,
    ToolCall,
    clean_text,
)

__all__ = ["MAX_ERROR_CHARS", "FormatError", "ToolFormat", "clean_text"]


class ToolFormat(Protocol):
    name: ClassVar[str]
    # True when tools travel in the API's `tools` field and calls come back as `tool_calls`.
    native: ClassVar[bool]

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

    def render_call(self, call: ToolCall, index: int = 0) -> str | dict[str, Any]:
        """`call` as a model writes it: reply text, or for native the OpenAI `tool_calls` entry."""
        ...

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        """Whether reply text holds a call written in this format (never, for native)."""
        ...

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        """`params` plus what this format needs from the server serving `model` (PROVIDER/NAME)."""
        ...
