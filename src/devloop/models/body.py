"""A chat-completions request as the JSON bytes sent: each message encoded once and kept across requests."""

from __future__ import annotations

import json
from itertools import repeat
from typing import Any


def dumps(value: Any) -> bytes:
    # The SDK's own settings for a JSON body (compact, UTF-8, no NaN).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class MessageCache:
    """Each message's JSON encoding, kept from one request to the next, so a request's body costs the
    new messages' encoding plus a join, not the whole history's.

    A message is found again by identity (its dict), and its encoding is reused only while the dict
    still has as many keys and an equal `content` and `tool_calls`: the agent and the condenser replace
    a message rather than editing it, and a new value put in either field is caught (an edit made
    inside a `tool_calls` list in place is not: nothing in devloop does that)."""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []  # held, so that no id below is reused while kept
        self._signs: tuple[list[Any], ...] = ([], [], [], [])
        self._encoded: list[bytes] = []
        # The request's other fields by key: the value, an equal copy of it, its encoding. The tools
        # (~8 KB of schemas) are the same on every request and cost more to encode than a step's messages;
        # comparing with the copy is ~20x cheaper than encoding and catches a value changed in place.
        self._fields: dict[str, tuple[Any, Any, bytes]] = {}

    def _encodings(self, messages: list[dict[str, Any]]) -> list[bytes]:
        # Each field of every message's sign in one C-level pass (map), not a tuple per message per
        # request: a request at step n looks at all 2n messages again.
        signs = (
            list(map(id, messages)),
            list(map(len, messages)),
            list(map(dict.get, messages, repeat("content"))),
            list(map(dict.get, messages, repeat("tool_calls"))),
        )
        kept = len(self._encoded)
        if kept <= len(messages) and all(
            new[:kept] == old for new, old in zip(signs, self._signs, strict=True)
        ):
            encoded = self._encoded + [dumps(m) for m in messages[kept:]]  # the usual case: appended
        else:  # some replaced or dropped (a compaction): reuse what is still the same message
            old_signs = list(zip(*self._signs, strict=True))
            by_id = {sign[0]: (sign, enc) for sign, enc in zip(old_signs, self._encoded, strict=True)}
            encoded = []
            for message, sign in zip(messages, zip(*signs, strict=True), strict=True):
                old = by_id.get(sign[0])
                encoded.append(old[1] if old is not None and old[0] == sign else dumps(message))
        self._messages, self._signs, self._encoded = list(messages), signs, encoded
        return encoded

    def body(self, request: dict[str, Any]) -> bytes:
        """`request` as JSON bytes, "model" first (a server may read it without decoding the rest)."""
        messages = request.get("messages")
        if not isinstance(messages, list) or not all(map(isinstance, messages, repeat(dict))):
            return dumps(request)
        encoded = self._encodings(messages)
        # One join for the whole body: a long history is megabytes, and each join is a fresh buffer
        # (page faults included) copied in full.
        pieces = [b","] * (2 * len(encoded) - 1) if encoded else []
        pieces[::2] = encoded
        parts = [b'{"model":', dumps(request.get("model")), b',"messages":[', *pieces, b"]"]
        for key, value in request.items():
            if key not in ("model", "messages"):
                parts += (b",", dumps(key), b":", self._field(key, value))
        parts.append(b"}")
        return b"".join(parts)

    def _field(self, key: str, value: Any) -> bytes:
        kept = self._fields.get(key)
        if kept is not None and kept[0] is value and kept[1] == value:
            return kept[2]
        encoded = dumps(value)
        if isinstance(value, list | dict):
            self._fields[key] = (value, json.loads(encoded), encoded)
        return encoded
