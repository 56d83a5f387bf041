"""The format seam: how tools are shown to the model and how its reply becomes ToolCalls."""

from __future__ import annotations

import re
from typing import Any, Protocol

from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

# Lone UTF-16 surrogates: a Python str may hold them, but they cannot be encoded as UTF-8 to send.
_SURROGATES = re.compile("[\ud800-\udfff]")
MAX_ERROR_CHARS = 2000


def clean_text(text: str) -> str:
    """`text` with every surrogate code point replaced by U+FFFD, so it can be encoded and sent."""
    return _SURROGATES.sub("\ufffd", text)


class FormatError(Exception):
    """The reply held no parseable call, an unknown tool, or invalid arguments.

    The message is shown to the model verbatim as an observation, so it must say exactly what was
    wrong and what shape was expected. It is made safe to send whatever it quotes: surrogates are
    replaced and it is cut at MAX_ERROR_CHARS.
    """

    def __init__(self, message: str = "") -> None:
        message = clean_text(str(message))
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 3] + "..."
        super().__init__(message)


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
