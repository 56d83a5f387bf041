"""auto: native tool calls when the reply has them, else whichever text format the reply is written in.

Tools go to the server in the API's `tools` field, but a model (or a server with its tool parser off)
may still answer with a call written in the text; auto reads those too, trying mistral, xml and hermes
in that order.
"""

from __future__ import annotations

from typing import Any

from devloop.formats import hermes, mistral, xml
from devloop.formats._common import no_call_error, result_header, text_history
from devloop.formats._guard import history_text, raw_tool_calls, reply_text
from devloop.formats.base import FormatError, ToolFormat
from devloop.formats.native import NativeFormat, native_example
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

_NATIVE = NativeFormat()
_MISTRAL = mistral.MistralFormat()
_XML = xml.XmlFormat()
_HERMES = hermes.HermesFormat()


def _candidates(text: str, tools: list[ToolSpec] | None) -> list[ToolFormat]:
    """The text formats whose markers appear in `text`, in the order they are tried."""
    found: list[ToolFormat] = []
    if mistral.detects(text, tools or []):
        found.append(_MISTRAL)
    if xml.detects(text):
        found.append(_XML)
    if hermes.detects(text):
        found.append(_HERMES)
    return found


def _render_observation(name: str | None, obs: Observation) -> str:
    return f"{result_header(name, obs)}\n{obs.text}"


class AutoFormat:
    """Native function calling, falling back to text calls in any of the text formats."""

    name = "auto"
    native = True

    def render_tools(self, tools: list[ToolSpec]) -> str:
        return ""

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        if raw_tool_calls(completion):
            return _NATIVE.parse(completion, tools)
        text = reply_text(completion)
        first_error: FormatError | None = None
        for fmt in _candidates(text, tools):
            try:
                return fmt.parse(completion, tools)
            except FormatError as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error
        raise no_call_error(
            "Call a tool through the API's function-calling interface (a tool call, not prose).",
            native_example(tools),
            tools,
        )

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        if isinstance(completion.tool_calls, list | tuple) and completion.tool_calls:
            return _NATIVE.history(completion, calls, observations)
        candidates = _candidates(history_text(completion), None)
        if candidates:
            return candidates[0].history(completion, calls, observations)
        return text_history(completion, calls, observations, _render_observation)
