"""xml: OpenHands' CodeAct text format for models without function calling.

    <function=str_replace_editor>
    <parameter=command>view</parameter>
    <parameter=path>/repo/setup.py</parameter>
    <parameter=view_range>[1, 20]</parameter>
    </function>

Values are raw text. As in OpenHands, exactly one newline directly inside each tag is dropped, so a
multi-line value may start and end on its own lines; everything else is kept verbatim. Values whose
schema type is integer, number, boolean, array or object are converted to it. A reply may stop before
`</function>` (servers use it as a stop sequence), and a `</parameter>` that is not followed by another
tag is taken as part of the value.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, ClassVar

from devloop.formats._common import (
    decode_json_at,
    no_call_error,
    result_header,
    stable_call_id,
    strip_end_tokens,
    text_history,
)
from devloop.formats._guard import check_call_count, check_json_value, history_text, quote, reply_text
from devloop.formats._schema import (
    check_arguments,
    describe_tools,
    example_arguments,
    find_tool,
    json_types,
    pick_example_tool,
    properties,
    type_label,
)
from devloop.formats.base import FormatError, clean_text
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, SamplingParams, ToolCall

FUNCTION_CLOSE = "</function>"
PARAM_CLOSE = "</parameter>"
_FUNCTION_OPEN = re.compile(r"<function=([^<>\n]+)>")
_PARAM_OPEN = re.compile(r"<parameter=([^<>\n]+)>")
# What may follow a real `</parameter>`: another tag, the end of the call, or the end of the reply
# (possibly cut inside `</function>` by a stop sequence).
_AFTER_PARAM = re.compile(
    r"\s*(?:<parameter=|<function=|</function|</tool_call>|(?:<(?:/[A-Za-z_]*)?)?\s*\Z)"
)


def render_xml_call(call: ToolCall) -> str:
    """The call in CodeAct syntax; multi-line values go on their own lines inside the tags."""
    lines = [f"<function={call.name}>"]
    for key, value in call.arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\n" in text:
            lines.append(f"<parameter={key}>\n{text}\n{PARAM_CLOSE}")
        else:
            lines.append(f"<parameter={key}>{text}{PARAM_CLOSE}")
    lines.append(FUNCTION_CLOSE)
    return "\n".join(lines)


def _example(tools: list[ToolSpec]) -> str:
    spec = pick_example_tool(tools)
    if spec is None:
        return "<function=tool_name>\n<parameter=parameter_name>value</parameter>\n</function>"
    return render_xml_call(ToolCall(name=spec.name, arguments=example_arguments(spec)))


def _one_line_example(tools: list[ToolSpec]) -> str:
    return _example(tools).replace("\n", "")


_SYNTAX = (
    "Call a tool by writing <function=TOOL_NAME>, then one <parameter=NAME>VALUE</parameter> per "
    "argument, then </function>."
)


def _strip_one_newline(value: str) -> str:
    # Only "\n", as OpenHands does: also stripping "\r\n" would eat a "\r" that ends a value.
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value


class _Scanner:
    """Finds tags in one reply, remembering each search, so a parse costs one pass over the text.

    A search is repeated only once the position passes what it found: without this, a call with
    thousands of parameters searched the rest of the reply for `</function>` once per parameter.
    """

    def __init__(self, text: str):
        self.text = text
        # kind -> (where the search started, what it found or -1); valid for any later start up to the find.
        self._found: dict[str, tuple[int, int]] = {}

    def next(self, kind: str, pos: int) -> int:
        """Where the next `kind` tag starts at or after `pos`, -1 if none. Kinds: param (`<parameter=`),
        call (`<function=`), close (`</function>`), real_close (a `</parameter>` that ends a value)."""
        cached = self._found.get(kind)
        if cached is not None and cached[0] <= pos and (cached[1] < 0 or pos <= cached[1]):
            return cached[1]
        if kind == "close":
            found = self.text.find(FUNCTION_CLOSE, pos)
        else:
            match = _SEARCHES[kind].search(self.text, pos)
            found = match.start() if match else -1
        self._found[kind] = (pos, found)
        return found

    def param_end(self, start: int) -> int:
        """Index of the `</parameter>` closing the value that starts at `start` (-1 if none): the first
        one followed by another tag or the end of the reply, else simply the first."""
        real = self.next("real_close", start)
        return real if real >= 0 else self.text.find(PARAM_CLOSE, start)


# No tool has anywhere near this many parameters; a reply with thousands is garbage, refused early.
_MAX_PARAMS = 100
_SEARCHES = {
    "param": _PARAM_OPEN,
    "call": _FUNCTION_OPEN,
    "real_close": re.compile(re.escape(PARAM_CLOSE) + "(?=" + _AFTER_PARAM.pattern + ")"),
}


def parse_xml(text: str, tools: list[ToolSpec]) -> list[ToolCall]:
    """All `<function=...>` calls in `text`, in order. Raises FormatError with a precise message."""
    text = strip_end_tokens(text)
    scanner = _Scanner(text)
    calls: list[ToolCall] = []
    pos = 0
    while (start := scanner.next("call", pos)) >= 0:
        match = _FUNCTION_OPEN.match(text, start)
        assert match is not None  # the scanner found one here
        name = match.group(1).strip()
        spec = find_tool(name, tools)
        params, pos = _parse_body(scanner, match.end(), name, tools)
        check_arguments(spec, params)
        arguments = {key: coerce_value(spec, key, value) for key, value in params.items()}
        check_json_value(arguments, f"the arguments of your call to {name!r}")
        index = len(calls)
        calls.append(
            ToolCall(
                name=name,
                arguments=arguments,
                id=stable_call_id(index, name, json.dumps(arguments, ensure_ascii=False)),
                raw=clean_text(text[match.start() : pos].strip()),
            )
        )
        check_call_count(len(calls))
    if not calls:
        raise no_call_error(_SYNTAX, _one_line_example(tools), tools)
    return calls


def _parse_body(scanner: _Scanner, pos: int, name: str, tools: list[ToolSpec]) -> tuple[dict[str, str], int]:
    """The raw parameter values of one call whose body starts at `pos`, and where the call ends."""
    text = scanner.text
    params: dict[str, str] = {}
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        param = _PARAM_OPEN.match(text, pos)
        if param:
            key = param.group(1).strip()
            end = scanner.param_end(param.end())
            if end < 0:
                raise FormatError(
                    f"Parameter {quote(key)} of your call to {name!r} is not closed: end its value with "
                    f"{PARAM_CLOSE}. Expected: {_one_line_example(tools)}"
                )
            if len(params) >= _MAX_PARAMS:
                raise FormatError(f"Your call to {name!r} has more than {_MAX_PARAMS} parameters.")
            if key in params:
                raise FormatError(
                    f"Parameter {quote(key)} is given twice in your call to {name!r}; give it once."
                )
            params[key] = _strip_one_newline(text[param.end() : end])
            pos = end + len(PARAM_CLOSE)
            continue
        if text.startswith(FUNCTION_CLOSE, pos):
            return params, pos + len(FUNCTION_CLOSE)
        # Stray text inside the body is skipped; a new <function= or the end of the reply closes the call.
        stops = [(p, kind) for kind in ("param", "close", "call") if (p := scanner.next(kind, pos)) >= 0]
        if not stops:
            return params, len(text)
        stop, kind = min(stops)
        if kind == "param":
            pos = stop
        elif kind == "close":
            return params, stop + len(FUNCTION_CLOSE)
        else:
            return params, stop


def coerce_value(spec: ToolSpec, key: str, text: str) -> Any:
    """`text` converted to the JSON type the schema gives parameter `key` (kept as text for strings)."""
    schema = properties(spec).get(key)
    types = json_types(schema, spec.parameters) if schema is not None else []
    if not types or "string" in types:
        return text
    value = text.strip()
    if "null" in types and value in ("", "null", "None"):
        return None
    for kind in types:
        if kind == "integer" and _INTEGER.fullmatch(value):
            return int(value)
        if kind == "number" and _NUMBER.fullmatch(value):
            return json.loads(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if "array" in types or "object" in types:
        what = f"the value of parameter {key!r} of your call to {spec.name!r}"
        decoded, end = decode_json_at(value, 0, what, f"Write it as JSON, e.g. {_json_example(types)}.")
        if value[end:].strip():
            raise FormatError(
                f"The value of parameter {key!r} of your call to {spec.name!r} has extra text after "
                f"the JSON value: {value[end:].strip()[:40]!r}."
            )
        if ("array" in types and isinstance(decoded, list)) or (
            "object" in types and isinstance(decoded, dict)
        ):
            return decoded
    raise FormatError(
        f"Parameter {key!r} of tool {spec.name!r} expects a value of type {type_label(schema, spec.parameters)}, "
        f"got {value[:60]!r}."
    )


# Bounded digits: Python refuses to convert integers of more than 4300 digits from text.
_INTEGER = re.compile(r"[+-]?\d{1,4000}")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,3999})(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _json_example(types: list[str]) -> str:
    return "[1, 20]" if "array" in types else '{"key": "value"}'


def _close_last_call(text: str) -> str:
    """Re-add a `</function>` the server cut off as a stop sequence, so the history stays well-formed."""
    if text.rfind("<function=") <= text.rfind(FUNCTION_CLOSE):
        return text
    stripped = text.rstrip()
    for size in range(len(FUNCTION_CLOSE) - 1, 1, -1):
        if stripped.endswith(FUNCTION_CLOSE[:size]):
            return stripped + FUNCTION_CLOSE[size:]
    return stripped + "\n" + FUNCTION_CLOSE


def _render_observation(name: str | None, obs: Observation) -> str:
    return f"{result_header(name, obs)}\n{obs.text}"


class XmlFormat:
    """OpenHands CodeAct `<function=...>` calls parsed from text; tools described in the prompt."""

    name: ClassVar[str] = "xml"
    native: ClassVar[bool] = False

    def render_tools(self, tools: list[ToolSpec]) -> str:
        return (
            "# Tools\n\n"
            "You can call the following tools.\n\n"
            f"{describe_tools(tools)}\n\n"
            "# How to call a tool\n\n"
            "Call a tool by writing, in exactly this format:\n\n"
            "<function=tool_name>\n"
            "<parameter=parameter_name>value</parameter>\n"
            "<parameter=other_parameter>\n"
            "a value that spans\n"
            "several lines\n"
            "</parameter>\n"
            "</function>\n\n"
            "- Start the call with <function= and end it with </function>.\n"
            "- Give every required parameter. Values are written as they are: no quotes, no escaping. "
            "A multi-line value goes on its own lines between the tags.\n"
            "- Write numbers, lists and objects as JSON, e.g. <parameter=view_range>[1, 20]</parameter>.\n"
            "- Write any reasoning before the call, not after it.\n\n"
            "Example reply:\n"
            f"I will start by looking at the relevant file.\n{_example(tools)}\n\n"
            "The results come back in the next message, each headed `EXECUTION RESULT of [tool_name]:`."
        )

    def render_call(self, call: ToolCall, index: int = 0) -> str:
        return render_xml_call(call)

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        return _FUNCTION_OPEN.search(text) is not None

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        """Stop at `</function` as OpenHands does (the parser tolerates the cut), so the model cannot go
        on to imagine the tool's output."""
        return dataclasses.replace(params, stop=["</function"])

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        return parse_xml(reply_text(completion), tools)

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        text = _close_last_call(strip_end_tokens(history_text(completion)))
        return text_history(completion, calls, observations, _render_observation, assistant_text=text)
