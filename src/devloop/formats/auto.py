"""auto: native tool calls when the reply has them, else whichever text format the reply is written in.

Tools go to the server in the API's `tools` field, but a model (or a server with its tool parser off)
may still answer with a call written in the text; auto reads those too, trying each registered text
format (mistral, xml, hermes) in registration order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from devloop.formats._common import no_call_error, result_header, text_history
from devloop.formats._guard import history_text, raw_tool_calls, reply_text
from devloop.formats.base import FormatError, ToolFormat
from devloop.formats.native import NativeFormat, native_example
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, SamplingParams, ToolCall


def _render_observation(name: str | None, obs: Observation) -> str:
    return f"{result_header(name, obs)}\n{obs.text}"


class AutoFormat:
    """Native function calling, falling back to text calls in any of the text formats."""

    name: ClassVar[str] = "auto"
    native: ClassVar[bool] = True

    def __init__(self, fallbacks: Sequence[ToolFormat] | None = None) -> None:
        if fallbacks is None:
            from devloop.formats.registry import text_formats  # the registry imports this module

            fallbacks = text_formats()
        self.fallbacks = list(fallbacks)
        self._native = NativeFormat()

    def _candidates(self, text: str, tools: list[ToolSpec]) -> list[ToolFormat]:
        """The text formats whose markers appear in `text`, in the order they are tried."""
        return [fmt for fmt in self.fallbacks if fmt.detects(text, tools)]

    def render_tools(self, tools: list[ToolSpec]) -> str:
        return ""

    def render_call(self, call: ToolCall, index: int = 0) -> dict[str, Any]:
        return self._native.render_call(call, index)

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        return bool(self._candidates(text, tools))

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        return params

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        if raw_tool_calls(completion):
            return self._native.parse(completion, tools)
        text = reply_text(completion)
        first_error: FormatError | None = None
        for fmt in self._candidates(text, tools):
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
            return self._native.history(completion, calls, observations)
        candidates = self._candidates(history_text(completion), [])
        if candidates:
            return candidates[0].history(completion, calls, observations)
        return text_history(completion, calls, observations, _render_observation)
