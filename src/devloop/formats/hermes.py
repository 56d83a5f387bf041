"""hermes: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` calls, as the Hermes and Qwen
chat templates define them, with the tools listed as JSON inside `<tools></tools>` in the prompt.

A missing `</tool_call>` at the end of the reply is tolerated, and a `<tool_call>` wrapping a CodeAct
`<function=...>` body (Qwen3-Coder's shape) is read with the xml parser.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from devloop.formats._common import (
    call_from_object,
    decode_json_at,
    no_call_error,
    result_header,
    stable_call_id,
    strip_end_tokens,
    text_history,
)
from devloop.formats._guard import check_call_count, reply_text
from devloop.formats._schema import example_arguments, pick_example_tool
from devloop.formats.base import FormatError
from devloop.formats.xml import parse_xml
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, SamplingParams, ToolCall

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


def render_hermes_call(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"


def _example(tools: list[ToolSpec]) -> str:
    spec = pick_example_tool(tools)
    if spec is None:
        return f'{OPEN}\n{{"name": "tool_name", "arguments": {{"parameter": "value"}}}}\n{CLOSE}'
    return render_hermes_call(ToolCall(name=spec.name, arguments=example_arguments(spec)))


def _one_line_example(tools: list[ToolSpec]) -> str:
    return _example(tools).replace("\n", "")


_SYNTAX = (
    f'Call a tool by writing {OPEN}, a JSON object with the tool\'s "name" and its "arguments" '
    f"object, then {CLOSE}."
)


def parse_hermes(text: str, tools: list[ToolSpec]) -> list[ToolCall]:
    """All `<tool_call>` calls in `text`, in order. Raises FormatError with a precise message."""
    text = strip_end_tokens(text)
    hint = f"Expected: {_one_line_example(tools)}"
    calls: list[ToolCall] = []
    pos = 0
    while (found := text.find(OPEN, pos)) >= 0:
        start = found + len(OPEN)
        while start < len(text) and text[start] in " \t\r\n":
            start += 1
        if text.startswith("<function=", start):
            close = text.find(CLOSE, start)
            end = close if close >= 0 else len(text)
            for call in parse_xml(text[start:end], tools):
                call.id = stable_call_id(
                    len(calls), call.name, json.dumps(call.arguments, ensure_ascii=False)
                )
                calls.append(call)
            check_call_count(len(calls))
            pos = end + len(CLOSE) if close >= 0 else end
            continue
        if start >= len(text) or text.startswith(CLOSE, start):
            raise FormatError(f"The {OPEN} block is empty: put the call's JSON object inside it. {hint}")
        value, end = decode_json_at(text, start, f"the call inside {OPEN}", hint)
        calls.append(call_from_object(value, len(calls), text[found:end], tools, hint))
        check_call_count(len(calls))
        pos = end
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if text.startswith(CLOSE, pos):
            pos += len(CLOSE)
    if not calls:
        raise no_call_error(_SYNTAX, _one_line_example(tools), tools)
    return calls


def _compact_schema(schema: Any) -> Any:
    """The schema without pydantic's `title` keywords, which only cost prompt tokens."""
    if isinstance(schema, list):
        return [_compact_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: _compact_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _compact_schema(value)
    return out


def _render_observation(name: str | None, obs: Observation) -> str:
    return f"<tool_response>\n{result_header(name, obs)}\n{obs.text}\n</tool_response>"


class HermesFormat:
    """Hermes/Qwen `<tool_call>` JSON calls parsed from text; tools listed in a `<tools>` block."""

    name: ClassVar[str] = "hermes"
    native: ClassVar[bool] = False

    def render_tools(self, tools: list[ToolSpec]) -> str:
        lines = []
        for spec in tools:
            entry = spec.openai()
            entry["function"]["parameters"] = _compact_schema(spec.parameters)
            lines.append(json.dumps(entry, ensure_ascii=False))
        return (
            "# Tools\n\n"
            "You may call one or more functions to carry out the task.\n\n"
            "The function signatures are given as JSON schemas within <tools></tools> tags; each "
            'schema\'s "properties" are the parameters and "required" lists the ones you must give:\n'
            "<tools>\n" + "\n".join(lines) + "\n</tools>\n\n"
            "For each function call, write a JSON object with the function name and its arguments "
            f"within {OPEN}{CLOSE} tags:\n"
            f'{OPEN}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n{CLOSE}\n\n'
            "Write any reasoning before the call. The JSON must be valid: escape newlines in strings "
            'as \\n and double quotes as \\".\n\n'
            "Example reply:\n"
            f"I will start by looking at the relevant file.\n{_example(tools)}\n\n"
            "The results come back in the next message inside <tool_response></tool_response> tags."
        )

    def render_call(self, call: ToolCall, index: int = 0) -> str:
        return render_hermes_call(call)

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        return OPEN in text

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        return params

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        return parse_hermes(reply_text(completion), tools)

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        return text_history(completion, calls, observations, _render_observation)
