"""Helpers shared by the formats: JSON decoding with precise errors, stable call ids, end-of-turn
token stripping, and the one-user-message history of the text formats."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable
from typing import Any

from devloop.formats._schema import check_arguments, find_tool
from devloop.formats.base import FormatError
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

# strict=False accepts raw newlines and tabs inside JSON strings, which models often write in code.
_DECODER = json.JSONDecoder(strict=False)
_ALNUM = string.ascii_letters + string.digits
# End-of-turn markers that leak into the text when a server does not skip special tokens.
_END_TOKENS = ("</s>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end|>")


def strip_end_tokens(text: str) -> str:
    """`text` without trailing whitespace and end-of-turn tokens such as `</s>`."""
    while True:
        stripped = text.rstrip()
        for token in _END_TOKENS:
            if stripped.endswith(token):
                stripped = stripped[: -len(token)]
        if stripped == text:
            return text
        text = stripped


def json_error(what: str, doc: str, err: json.JSONDecodeError, hint: str = "") -> FormatError:
    """A FormatError quoting where in `doc` the JSON broke and what the decoder expected."""
    before = doc[max(0, err.pos - 30) : err.pos]
    after = doc[err.pos : err.pos + 30]
    context = f"{before}<<HERE>>{after}".replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    msg = (
        f"Invalid JSON in {what}: {err.msg} (line {err.lineno}, column {err.colno}, "
        f"character {err.pos}), here: {context}"
    )
    return FormatError(f"{msg}. {hint}".rstrip() if hint else msg)


def decode_json_at(text: str, start: int, what: str, hint: str = "") -> tuple[Any, int]:
    """Decode the one JSON value beginning at `start` (after whitespace); return it and its end index.

    Whatever follows the value is left alone, so a `]` or `}` inside a JSON string, or text after the
    value, never confuses the split. Error positions are counted from the start of the value.
    """
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    doc = text[start:]
    try:
        value, end = _DECODER.raw_decode(doc)
    except json.JSONDecodeError as err:
        raise json_error(what, doc, err, hint) from None
    return value, start + end


def decode_arguments(value: Any, what: str, hint: str = "") -> dict[str, Any]:
    """Arguments given as an object, a JSON string of one, or nothing at all, as a dict."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = _DECODER.decode(value.strip())
        except json.JSONDecodeError as err:
            raise json_error(what, value.strip(), err, hint) from None
        if isinstance(value, str):
            # Double-encoded ("{\"command\": ...}" as a JSON string): unwrap once.
            return decode_arguments(value, what, hint)
    if not isinstance(value, dict):
        raise FormatError(
            f"{_capitalize(what)} must be a JSON object of parameter names to values, "
            f"not {_json_kind(value)}. {hint}".rstrip()
        )
    return value


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "a string"


def stable_call_id(index: int, name: str, arguments: str) -> str:
    """A 9-character alphanumeric id derived from the call, identical every time it is computed.

    Nine alphanumerics is what mistral-common demands of tool-call ids, and any other server accepts it.
    """
    digest = hashlib.sha256(f"{index}\x00{name}\x00{arguments}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(9):
        number, rem = divmod(number, 62)
        chars.append(_ALNUM[rem])
    return "".join(chars)


def canonical_json(args: dict[str, Any]) -> str:
    return json.dumps(args, ensure_ascii=False, sort_keys=True)


def no_call_error(instruction: str, example: str, tools: list[ToolSpec]) -> FormatError:
    """The error for a reply with no call in it: how to call a tool in this format, and an example."""
    msg = f"No tool call found in your reply. {instruction} For example: {example}"
    if any(spec.name == "finish" for spec in tools):
        msg += " When the task is done, call the 'finish' tool."
    return FormatError(msg)


def text_history(
    completion: Completion,
    calls: list[ToolCall],
    observations: list[Observation],
    render: Callable[[str | None, Observation], str],
    assistant_text: str | None = None,
) -> list[dict[str, Any]]:
    """The assistant's text, then one user message holding every observation, labelled by `render`.

    Observations beyond the parsed calls (a format error, say) are rendered with no tool name.
    """
    text = assistant_text if assistant_text is not None else strip_end_tokens(completion.content or "")
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": text}]
    if observations:
        parts = [render(calls[i].name if i < len(calls) else None, obs) for i, obs in enumerate(observations)]
        messages.append({"role": "user", "content": "\n\n".join(parts)})
    return messages


def result_header(name: str | None, obs: Observation) -> str:
    """`EXECUTION RESULT of [name]:`, the label OpenHands uses for non-native models."""
    if name is None:
        return "ERROR:" if obs.is_error else "RESULT:"
    return f"EXECUTION RESULT of [{name}]:"


def call_from_object(item: Any, index: int, raw: str, tools: list[ToolSpec], hint: str) -> ToolCall:
    """A call written as a JSON object `{"name": ..., "arguments": {...} or "<json>"}` (mistral, hermes)."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise FormatError(
            f'Each tool call must be a JSON object with a "name" string and an "arguments" object. {hint}'
        )
    name = item["name"]
    spec = find_tool(name, tools)
    raw_args = item.get("arguments", item.get("parameters"))
    arguments = decode_arguments(raw_args, f"the arguments of your call to {name!r}", hint)
    check_arguments(spec, arguments)
    call_id = item.get("id") if isinstance(item.get("id"), str) else ""
    return ToolCall(
        name=name,
        arguments=arguments,
        id=call_id or stable_call_id(index, name, json.dumps(arguments, ensure_ascii=False)),
        raw=raw,
    )
