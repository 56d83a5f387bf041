"""Tool-call formats: how tools are shown to a model and how its replies become ToolCalls.

`get_format(name)` returns one of: native (OpenAI tool_calls), mistral (`[TOOL_CALLS]name[ARGS]{...}`),
xml (OpenHands CodeAct `<function=...>`), hermes (`<tool_call>{...}</tool_call>`) and auto (native,
falling back to any text format). Whatever a reply holds, parsing returns calls or raises FormatError;
MAX_REPLY_CHARS, MAX_CALLS and MAX_JSON_DEPTH bound what one reply may hold.
"""

from devloop.formats._guard import MAX_CALLS, MAX_JSON_DEPTH, MAX_REPLY_CHARS
from devloop.formats.base import FormatError, ToolFormat
from devloop.formats.registry import FORMAT_NAMES, format_names, get_format, register_format, render_call

__all__ = [
    "FORMAT_NAMES",
    "MAX_CALLS",
    "MAX_JSON_DEPTH",
    "MAX_REPLY_CHARS",
    "FormatError",
    "ToolFormat",
    "format_names",
    "get_format",
    "register_format",
    "render_call",
]
