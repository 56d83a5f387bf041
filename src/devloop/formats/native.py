"""native: tools travel in the API's `tools` field and calls come back as OpenAI `tool_calls`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from devloop.formats._common import decode_arguments, no_call_error, stable_call_id
from devloop.formats._guard import (
    MAX_CALLS,
    MAX_REPLY_CHARS,
    check_json_value,
    history_text,
    raw_tool_calls,
    safe_id,
    safe_name,
    size_error,
)
from devloop.formats._schema import check_arguments, example_arguments, find_tool, pick_example_tool
from devloop.formats.base import FormatError, clean_text
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, SamplingParams, ToolCall

_NOT_EXECUTED = "Not executed."


def normalize_tool_call(index: int, raw: Any) -> dict[str, Any]:
    """The tool call as a valid OpenAI message entry: id filled in, `type` set, arguments a JSON string.

    A missing id is derived from the call itself, so parse() and history() agree on it.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
        raise FormatError(f"Tool call #{index + 1} is malformed: it has no 'function' object.")
    function = raw["function"]
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FormatError(f"Tool call #{index + 1} has no function name.")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):
        # Checked first: json.dumps recurses, and fails on cycles, sets or non-string keys.
        check_json_value(arguments, f"the arguments of tool call #{index + 1}")
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = safe_id(raw.get("id")) or stable_call_id(index, name, arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def native_example(tools: list[ToolSpec]) -> str:
    spec = pick_example_tool(tools)
    if spec is None:
        return "a tool_calls entry naming the tool and its JSON arguments."
    args = json.dumps(example_arguments(spec), ensure_ascii=False)
    return f"call the function {spec.name!r} with arguments {args}."


class NativeFormat:
    """OpenAI function calling. Tools are sent by the model client; nothing goes into the prompt."""

    name: ClassVar[str] = "native"
    native: ClassVar[bool] = True

    def render_tools(self, tools: list[ToolSpec]) -> str:
        return ""

    def render_call(self, call: ToolCall, index: int = 0) -> dict[str, Any]:
        return render_native_call(call, index)

    def detects(self, text: str, tools: list[ToolSpec]) -> bool:
        return False

    def tune(self, params: SamplingParams, model: str) -> SamplingParams:
        return params

    def parse(self, completion: Completion, tools: list[ToolSpec]) -> list[ToolCall]:
        raw_calls = raw_tool_calls(completion)
        if not raw_calls:
            raise no_call_error(
                "Call a tool through the API's function-calling interface (a tool call, not text in your message).",
                native_example(tools),
                tools,
            )
        calls = []
        size = 0
        for index, raw in enumerate(raw_calls):
            entry = normalize_tool_call(index, raw)
            size += len(entry["function"]["arguments"])
            if size > MAX_REPLY_CHARS:
                raise size_error("the arguments of your tool calls", size)
            name = entry["function"]["name"]
            spec = find_tool(name, tools)
            arguments = decode_arguments(
                entry["function"]["arguments"],
                f"the arguments of your call to {name!r}",
                "Pass the arguments as one JSON object.",
            )
            check_arguments(spec, arguments)
            calls.append(
                ToolCall(name=name, arguments=arguments, id=entry["id"], raw=entry["function"]["arguments"])
            )
        return calls

    def history(
        self, completion: Completion, calls: list[ToolCall], observations: list[Observation]
    ) -> list[dict[str, Any]]:
        """The assistant message, then one `tool` message per tool call.

        Every tool call gets an answer, since servers reject a history with unanswered calls: when
        parsing failed (`calls` empty) the step's error observation answers them all; calls with no
        observation of their own (skipped after `finish`) get `Not executed.`. Observations with no
        call to answer go in one user message.
        """
        message: dict[str, Any] = {"role": "assistant", "content": history_text(completion)}
        entries = [self._entry(i, raw) for i, raw in enumerate(_listed(completion.tool_calls)[:MAX_CALLS])]
        if entries:
            message["tool_calls"] = entries
        messages = [message]
        # With no parsed calls the step failed as a whole, so its (error) observation answers every call;
        # otherwise calls past the observations were skipped (after `finish`, say).
        fallback = observations[-1].text if observations and not calls else _NOT_EXECUTED
        for i, entry in enumerate(entries):
            text = observations[i].text if i < len(observations) else fallback
            messages.append({"role": "tool", "tool_call_id": entry["id"], "content": text})
        leftover = observations[len(entries) :]
        if leftover:
            messages.append({"role": "user", "content": "\n\n".join(obs.text for obs in leftover)})
        return messages

    @staticmethod
    def _entry(index: int, raw: Any) -> dict[str, Any]:
        """The call as it goes back to the server: a valid entry even when the model's was not."""
        try:
            entry = normalize_tool_call(index, raw)
        except FormatError:
            # A malformed entry still needs an id, a name and string arguments to be a valid message.
            raw_dict = raw if isinstance(raw, dict) else {}
            function: dict[str, Any] = (
                raw_dict["function"] if isinstance(raw_dict.get("function"), dict) else {}
            )
            name = safe_name(function.get("name"))
            arguments = function.get("arguments")
            arguments = arguments if isinstance(arguments, str) else ""
            call_id = safe_id(raw_dict.get("id")) or stable_call_id(index, name, arguments)
            entry = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        function = entry["function"]
        function["name"] = safe_name(function["name"])  # an unknown name may be megabytes or not text
        if len(function["arguments"]) > MAX_REPLY_CHARS:
            function["arguments"] = "{}"  # refused as too long; echoing megabytes would fill the context
        function["arguments"] = clean_text(function["arguments"])
        return entry


def _listed(tool_calls: Any) -> list[Any]:
    """`tool_calls` if it is a list (or tuple); anything else holds no call to answer."""
    return list(tool_calls) if isinstance(tool_calls, list | tuple) else []


def render_native_call(call: ToolCall, index: int = 0) -> dict[str, Any]:
    """The OpenAI `tool_calls` entry for `call`."""
    arguments = json.dumps(call.arguments, ensure_ascii=False)
    return {
        "id": call.id or stable_call_id(index, call.name, arguments),
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }
