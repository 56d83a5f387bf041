"""Helpers shared by the formats: JSON decoding with precise errors, stable call ids, end-of-turn
token stripping, and the one-user-message history of the text formats."""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable
from typing import Any

from devloop.formats._guard import (
    MAX_JSON_DEPTH,
    MAX_REPLY_CHARS,
    check_json_value,
    history_text,
    json_kind,
    safe_id,
    size_error,
)
from devloop.formats._schema import check_arguments, find_tool
from devloop.formats.base import FormatError, clean_text
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

# strict=False accepts raw newlines and tabs inside JSON strings, which models often write in code.
_DECODER = json.JSONDecoder(strict=False)
_ALNUM = string.ascii_letters + string.digits
# End-of-turn markers that leak into the text when a server does not skip special tokens.
_END_TOKENS = ("</s>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end|>")
# Whitespace and end tokens, reversed: no token ends with another, so the greedy match is the strip.
# Possessive, so the engine keeps no backtracking state (5x faster on a long run).
_END_RUN = re.compile("(?:\\s++|" + "|".join(re.escape(token[::-1]) for token in _END_TOKENS) + ")*+")
_LONGEST_TOKEN = max(len(token) for token in _END_TOKENS)


def strip_end_tokens(text: str) -> str:
    """`text` without trailing whitespace and end-of-turn tokens such as `</s>`."""
    if not text or not (text[-1].isspace() or text[-1] == ">"):
        return text
    # Matched on the reversed tail, widened until the run of tokens ends inside it: linear in the run,
    # however many tokens or spaces a reply ends with.
    window = 256
    while True:
        tail = text[-window:][::-1]
        cut = _END_RUN.match(tail).end()  # type: ignore[union-attr]  # `*` always matches
        if cut < len(tail) - _LONGEST_TOKEN or len(tail) == len(text):
            return text[: len(text) - cut] if cut else text
        window *= 4


def json_error(what: str, doc: str, err: json.JSONDecodeError, hint: str = "", start: int = 0) -> FormatError:
    """A FormatError quoting where in `doc` (the value starting at `start`) the JSON broke and what the
    decoder expected. Line, column and character are counted from `start`."""
    pos = err.pos
    before = doc[max(start, pos - 30) : pos]
    after = doc[pos : pos + 30]
    context = f"{before}<<HERE>>{after}".replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    line = doc.count("\n", start, pos) + 1
    column = pos - max(start, doc.rfind("\n", start, pos) + 1) + 1
    msg = (
        f"Invalid JSON in {what}: {err.msg} (line {line}, column {column}, "
        f"character {pos - start}), here: {context}"
    )
    return FormatError(f"{msg}. {hint}".rstrip() if hint else msg)


def _decode(text: str, start: int, what: str, hint: str, check: bool = True) -> tuple[Any, int]:
    """raw_decode at `start`, with every way decoding can fail turned into FormatError."""
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as err:
        raise json_error(what, text, err, hint, start) from None
    except RecursionError:  # the C decoder recurses once per nested array or object
        raise FormatError(
            f"Invalid JSON in {what}: arrays and objects nested more than {MAX_JSON_DEPTH} levels deep."
        ) from None
    except ValueError:  # an integer literal past Python's 4300-digit limit
        raise FormatError(f"Invalid JSON in {what}: a number with too many digits. {hint}".rstrip()) from None
    if check:
        check_json_value(value, what)
    return value, end


def decode_json_at(text: str, start: int, what: str, hint: str = "") -> tuple[Any, int]:
    """Decode the one JSON value beginning at `start` (after whitespace); return it and its end index.

    Whatever follows the value is left alone, so a `]` or `}` inside a JSON string, or text after the
    value, never confuses the split. Error positions are counted from the start of the value. The text
    is never copied, so decoding many calls from one long reply stays linear.
    """
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    return _decode(text, start, what, hint)


def decode_arguments(value: Any, what: str, hint: str = "") -> dict[str, Any]:
    """Arguments given as an object, a JSON string of one, or nothing at all, as a dict."""
    for _ in range(2):  # a double-encoded object ("{\"command\": ...}" as a JSON string) is unwrapped once
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        if not isinstance(value, str):
            break
        if len(value) > MAX_REPLY_CHARS:
            raise size_error(what, len(value))
        stripped = value.strip()
        value, end = _decode(stripped, 0, what, hint, check=False)
        if end < len(stripped):
            raise json_error(what, stripped, json.JSONDecodeError("Extra data", stripped, end), hint)
    if not isinstance(value, dict):
        raise FormatError(
            f"{_capitalize(what)} must be a JSON object of parameter names to values, "
            f"not {json_kind(value)}. {hint}".rstrip()
        )
    check_json_value(value, what)  # once, on what is returned, however it arrived
    return value


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def stable_call_id(index: int, name: str, arguments: str) -> str:
    """A 9-character alphanumeric id derived from the call, identical every time it is computed.

    Nine alphanumerics is what mistral-common demands of tool-call ids, and any other server accepts it.
    """
    # surrogatepass: the id of a call with a lone surrogate in it is still an id, not a crash.
    digest = hashlib.sha256(f"{index}\x00{name}\x00{arguments}".encode("utf-8", "surrogatepass")).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(9):
        number, rem = divmod(number, 62)
        chars.append(_ALNUM[rem])
    return "".join(chars)


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
    text = (
        clean_text(assistant_text)
        if assistant_text is not None
        else strip_end_tokens(history_text(completion))
    )
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
    return ToolCall(
        name=name,
        arguments=arguments,
        id=safe_id(item.get("id")) or stable_call_id(index, name, json.dumps(arguments, ensure_ascii=False)),
        raw=clean_text(raw),
    )
