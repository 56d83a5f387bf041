"""mistral: Mistral/Devstral tool calls read from the reply text (server-side tool parser off).

The shapes, as mistral-common's instruct tokenizers write them and vLLM's mistral parser reads them:

- v11+ tokenizers (Devstral, Mistral Small 3.1+): ``[TOOL_CALLS]name[ARGS]{json}``, once per call,
  with ``[CALL_ID]id`` between name and ``[ARGS]`` in v11 only;
- v3-v7 tokenizers: ``[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}, ...]``, where
  `arguments` may also be a JSON string;
- ``[TOOL_CALLS]name{json}``: the v11 shape with the ``[ARGS]`` special token lost in decoding.

Text before the first ``[TOOL_CALLS]`` is the model's reasoning; a trailing ``</s>`` is ignored. When a
server strips special tokens entirely, a reply that *starts* with ``known_tool{...}`` or ``[{"name": ...``
is still read as a call. JSON is decoded with a real decoder from the value's first character, so
brackets and braces inside strings never end a call early.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, ClassVar

from devloop.formats._common import (
    call_from_object,
    decode_arguments,
    decode_json_at,
    no_call_error,
    result_header,
    stable_call_id,
    strip_end_tokens,
    text_history,
)
from devloop.formats._guard import check_call_count, quote, reply_text
from devloop.formats._schema import (
    check_arguments,
    describe_tools,
    example_arguments,
    find_tool,
    pick_example_tool,
)
from devloop.formats.base import FormatError, clean_text
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, SamplingParams, ToolCall

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"

_NAME = re.compile(r"\s*([A-Za-z0-9_.\-]+)")
_CALL_ID = re.compile(r"\[CALL_ID\]\s*([A-Za-z0-9_.\-]*)")
# After a call's JSON, another `name[ARGS]{...}` may follow in the same segment (vLLM reads those too).
_NEXT_IN_SEGMENT = re.compile(r"[\s,]*([A-Za-z0-9_.\-]+)\s*(?=\[ARGS\]|\[CALL_ID\]|\{)")
_LIST_START = re.compile(r"\[\s*\{\s*\"name\"")


def render_mistral_call(call: ToolCall) -> str:
    """`[TOOL_CALLS]name[ARGS]{json}`, the shape Devstral emits."""
    return f"{TOOL_CALLS}{call.name}{ARGS}{json.dumps(call.arguments, ensure_ascii=False)}"


def _example_line(tools: list[ToolSpec]) -> str:
    spec = pick_example_tool(tools)
    if spec is None:
        return f'{TOOL_CALLS}tool_name{ARGS}{{"parameter": "value"}}'
    return render_mistral_call(ToolCall(name=spec.name, arguments=example_arguments(spec)))


def _syntax() -> str:
    return (
        f"Call a tool by writing {TOOL_CALLS}, the tool name, {ARGS}, then the arguments as one JSON object."
    )


def _bare_start(text: str, tools: list[ToolSpec]) -> int | None:
    """Where a call begins in a reply whose special tokens were stripped, if it starts with one."""
    start = len(text) - len(text.lstrip())
    if _LIST_START.match(text, start):
        return start
    match = _NAME.match(text, start)
    if match and any(spec.name == match.group(1) for spec in tools):
        rest = text[match.end() :].lstrip()
        if rest.startswith((ARGS, CALL_ID, "{")):
            return start
    return None


def parse_mistral(text: str, tools: list[ToolSpec]) -> list[ToolCall]:
    """All calls in `text`, in order. Raises FormatError with a precise message."""
    text = strip_end_tokens(text)
    first = text.find(TOOL_CALLS)
    if first >= 0:
        pos = first + len(TOOL_CALLS)
    else:
        bare = _bare_start(text, tools)
        if bare is None:
            raise no_call_error(_syntax(), _example_line(tools), tools)
        pos = bare
    hint = f"Expected: {_example_line(tools)}"
    calls: list[ToolCall] = []
    while True:
        pos = _parse_segment(text, pos, tools, calls, hint)
        following = text.find(TOOL_CALLS, pos)
        if following < 0:
            break
        pos = following + len(TOOL_CALLS)
    if not calls:
        raise no_call_error(_syntax(), _example_line(tools), tools)
    return calls


def _parse_segment(text: str, pos: int, tools: list[ToolSpec], calls: list[ToolCall], hint: str) -> int:
    """Parse the call(s) after one `[TOOL_CALLS]` starting at `pos`; return where parsing stopped."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    if text.startswith("[", pos) and not text.startswith((ARGS, CALL_ID), pos):
        value, end = decode_json_at(text, pos, "the tool-call list after [TOOL_CALLS]", hint)
        items = value if isinstance(value, list) else [value]
        check_call_count(len(calls) + len(items))
        for item in items:
            raw = json.dumps(item, ensure_ascii=False) if len(items) > 1 else text[pos:end]
            calls.append(call_from_object(item, len(calls), raw, tools, hint))
        return end
    if text.startswith("{", pos):
        value, end = decode_json_at(text, pos, "the tool call after [TOOL_CALLS]", hint)
        calls.append(call_from_object(value, len(calls), text[pos:end], tools, hint))
        check_call_count(len(calls))
        return end
    while True:
        pos = _parse_named_call(text, pos, tools, calls, hint)
        more = _NEXT_IN_SEGMENT.match(text, pos)
        # A bare `word{` after the call is only taken as another call if it names a tool or uses [ARGS].
        if not more or not (
            text.startswith((ARGS, CALL_ID), more.end()) or any(t.name == more.group(1) for t in tools)
        ):
            return pos
        pos = more.start(1)


def _parse_named_call(text: str, pos: int, tools: list[ToolSpec], calls: list[ToolCall], hint: str) -> int:
    start = pos
    match = _NAME.match(text, pos)
    if not match:
        found = text[pos : pos + 40].strip() or "nothing"
        raise FormatError(f"Expected a tool name right after {TOOL_CALLS}, found {found!r}. {hint}")
    name = match.group(1)
    pos = match.end()
    call_id = ""
    id_match = _CALL_ID.match(text, pos)
    if id_match:
        call_id = id_match.group(1)
        pos = id_match.end()
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    if text.startswith(ARGS, pos):
        pos += len(ARGS)
    elif not text.startswith("{", pos):
        found = text[pos : pos + 40].strip() or "the end of the reply"
        raise FormatError(
            f"Expected {ARGS} and a JSON object of arguments after the tool name {quote(name)}, "
            f"found {found!r}. {hint}"
        )
    spec = find_tool(name, tools)
    what = f"the arguments of your call to {name!r}"
    value, end = decode_json_at(text, pos, what, hint)
    if isinstance(value, str):
        raise FormatError(
            f"The arguments of your call to {name!r} must be a JSON object, not a string. {hint}"
        )
    arguments = decode_arguments(value, what, hint)
    check_arguments(spec, arguments)
    raw = clean_text(text[start:end].strip())
    index = len(calls)
    calls.append(
        ToolCall(
            name=name,
            arguments=arguments,
            id=call_id or stable_call_id(index, name, json.dumps(arguments, ensure_ascii=False)),
            raw=raw,
        )
    )
    check_call_count(len(calls))
    return end


def _render_observation(name: str | None, obs: Observation) -> str:
    return f"{result_header(name, obs)}\n{obs.text}"


class MistralFormat:
    """Devstral's `[TOOL_CALLS]name[ARGS]{json}` calls, parsed from text; tools described in the prompt."""

    name: ClassVar[str] = "mistral"
    native: ClassVar[bool] = False

    def render_tools(self, tools: list[ToolSpec]) -> str:
        example = _example_line(tools)
        return (
            "# Tools\n\n"
            "You can call the following tools.\n\n"
            f"{describe_tools(tools)}\n\n"
            "# How to call a tool\n\n"
            f"Write {TOOL_CALLS}, then the tool name, then {ARGS}, then the arguments as one JSON object "
            "whose keys are the parameter names:\n"
            f'{TOOL_CALLS}tool_name{ARGS}{{"parameter": "value"}}\n\n'
            "Write any reasoning before the call. The arguments must be valid JSON: escape newlines in "
            'strings as \\n and double quotes as \\". To make several calls, write one such call after '
            "the other; they run in order.\n\n"
            "Example reply:\n"
            f"I will start by looking at the relevant file.\n{example}\n\n"
            "The results come back in the next message, each headed `EXECUTION RESULT of [tool_name]:`."
        )

    def render_call(self, call: ToolCall, index: int = 0) -> str:
        return render_mistral_call(call)

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        return TOOL_CALLS in text or _bare_start(strip_end_tokens(text), tools) is not None

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        """On a self-hosted (openai/) server, keep `[TOOL_CALLS]` and `[ARGS]` in the text: vLLM drops them
        by default as special tokens; other OpenAI-compatible servers ignore the field."""
        if not model.startswith("openai/"):
            return params
        return dataclasses.replace(
            params, extra_body={**(params.extra_body or {}), "skip_special_tokens": False}
        )

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        return parse_mistral(reply_text(completion), tools)

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        return text_history(completion, calls, observations, _render_observation)
