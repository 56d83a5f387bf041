"""Bounds on what one reply may hold, and the checks that turn a hostile or broken reply into a
FormatError instead of a crash.

Everything in a Completion comes from a model or a server, so it is untrusted: content that is not text,
`tool_calls` that is not a list, JSON nested a million deep, lone UTF-16 surrogates (valid in a Python
str, but they cannot be encoded to send the history back), megabytes of arguments. The checks here are
iterative and linear in the size of the reply, so no input reaches a recursion limit or a quadratic path.
"""

from __future__ import annotations

import re
from typing import Any

from devloop.formats.base import FormatError, clean_text
from devloop.types import Completion

# One reply's text, or the arguments of all its native calls together. Far above any model's output
# limit (about 1 M tokens), so only a broken or hostile server reaches it.
MAX_REPLY_CHARS = 4 * 1024 * 1024
# Calls in one reply: each one runs a tool, so a reply of 100,000 calls would stall the run.
MAX_CALLS = 100
# Arrays and objects nested deeper than this are refused before any recursive code sees them.
MAX_JSON_DEPTH = 100
# Integers beyond this many bits cannot be written back as decimal text (Python's 4300-digit limit).
_MAX_INT_BITS = 14_000
_SURROGATE = re.compile("[\ud800-\udfff]")
_SAFE_ID = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def quote(text: str, limit: int = 60) -> str:
    """`repr(text)`, shortened to `limit` characters with the full length said, for error messages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def size_error(what: str, size: int) -> FormatError:
    return FormatError(
        f"Too much text in {what}: {size:,} characters, over the limit of {MAX_REPLY_CHARS:,} for one "
        "reply. Write big content in smaller pieces over several calls."
    )


def check_call_count(count: int) -> None:
    """FormatError once a reply holds more calls than MAX_CALLS."""
    if count > MAX_CALLS:
        raise FormatError(
            f"Your reply holds more than {MAX_CALLS} tool calls; make at most {MAX_CALLS} in one reply."
        )


def _content_text(content: Any) -> str | None:
    """The reply's content as text: a string, or OpenAI content parts joined; None when it is neither."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("text"), str) for part in content
    ):
        return "".join(part["text"] for part in content)
    return None


def reply_text(completion: Completion) -> str:
    """The text a text format parses; FormatError if the content is not text or is over the size cap."""
    text = _content_text(completion.content)
    if text is None:
        raise FormatError(
            f"The reply's content must be text, not {json_kind(completion.content)}; write the tool call as text."
        )
    if len(text) > MAX_REPLY_CHARS:
        raise size_error("your reply", len(text))
    return text


def history_text(completion: Completion) -> str:
    """The reply's text as it goes back into the conversation: always valid, sendable text.

    Surrogates become U+FFFD and a reply over the size cap keeps only its head, so a broken reply cannot
    make the next request fail or fill the context.
    """
    text = _content_text(completion.content) or ""
    if len(text) > MAX_REPLY_CHARS:
        text = f"{text[:2000]}\n[... {len(text) - 2000:,} characters cut: the reply was over the size limit]"
    return clean_text(text)


def raw_tool_calls(completion: Completion) -> list[Any]:
    """The native tool calls as a list ([] for none); FormatError if they are not a list or too many."""
    calls = completion.tool_calls
    if calls is None:
        return []
    if not isinstance(calls, list | tuple):
        raise FormatError(f"The reply's tool_calls must be a list of calls, not {json_kind(calls)}.")
    check_call_count(len(calls))
    return list(calls)


def safe_id(value: Any) -> str:
    """`value` if it can serve as a call id in the history (a short plain string), else ''."""
    return value if isinstance(value, str) and _SAFE_ID.fullmatch(value) else ""


def safe_name(value: Any) -> str:
    """A tool name fit to echo back in the history: `value` if it is a short plain name, else 'unknown'."""
    return value if isinstance(value, str) and _SAFE_NAME.fullmatch(value) else "unknown"


def check_json_value(value: Any, what: str) -> None:
    """FormatError unless `value` is plain JSON data that can be encoded back to text.

    That is: dicts with string keys, lists (or tuples), strings without surrogates, numbers that fit in
    4300 digits, booleans and null; nested at most MAX_JSON_DEPTH deep; no container seen twice;
    at most MAX_REPLY_CHARS of text in all. Walks an explicit stack, never the Python call stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    chars = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            chars += len(item)
            if _SURROGATE.search(item):
                raise surrogate_error(what, item)
        elif item is None or isinstance(item, bool | float):
            pass
        elif isinstance(item, int):
            if item.bit_length() > _MAX_INT_BITS:
                raise FormatError(f"A number in {what} has too many digits.")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise FormatError(
                    f"Arrays and objects in {what} are nested more than {MAX_JSON_DEPTH} levels deep; "
                    "pass flat arguments."
                )
            if id(item) in seen:
                # A cycle would make json.dumps fail, and shared objects can expand exponentially when
                # written out; a JSON decoder never produces either.
                raise FormatError(f"An object appears more than once in {what} (shared or cyclic).")
            seen.add(id(item))
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str):
                        raise FormatError(f"A key in {what} is not a string: {key!r:.40}.")
                stack.extend((key, depth + 1) for key in item)
                stack.extend((sub, depth + 1) for sub in item.values())
            else:
                stack.extend((sub, depth + 1) for sub in item)
            chars += len(item)  # bounds the walk over containers of empty strings too
        else:
            raise FormatError(f"A value in {what} cannot be written as JSON (a {type(item).__name__}).")
        if chars > MAX_REPLY_CHARS:
            raise size_error(what, chars)


def surrogate_error(what: str, text: str) -> FormatError:
    match = _SURROGATE.search(text)
    where = f" at character {match.start()}" if match else ""
    return FormatError(
        f"There is a lone UTF-16 surrogate ({ascii(match.group()) if match else '?'}{where}) in {what}, "
        "which is not valid text; write the character itself or leave it out."
    )


def json_kind(value: Any) -> str:
    """`value`'s kind in JSON words, for error messages."""
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
