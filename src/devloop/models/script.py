"""A scripted model's replies: the JSONL script format the scripted server answers from.

A script is a list of entries; each request consumes one:

* an assistant message ``{"role": "assistant", "content": ..., "tool_calls": [...]}``, optionally with
  ``"usage": {"prompt_tokens", "completion_tokens"}`` (otherwise estimated as bytes / 4 of the request
  body and characters / 4 of the reply) and ``"finish_reason"`` (otherwise ``tool_calls`` or ``stop``).
  Tool calls may omit ``id`` and ``type``, and ``arguments`` may be a JSON object: they are filled in
  and encoded as the OpenAI protocol requires.
* a recorded streamed reply ``{"stream": [chunk, ...]}``: the chunks sent as server-sent events, then
  ``[DONE]`` (whatever the request asked);
* a fault ``{"fault": {...}}``, to exercise a client's error handling:

  - ``{"status": 500}`` (any 4xx/5xx), ``{"status": 429, "retry_after": 0.2}`` (sends ``Retry-After``),
    ``{"status": 400, "code": "context_length_exceeded", "message": "..."}``: an OpenAI error body;
  - ``{"kind": "timeout", "delay": 5}``: wait ``delay`` seconds (longer than the client's timeout),
    then answer ``[timed out]``;
  - ``{"kind": "reset"}``: close the connection without a response;
  - ``{"kind": "malformed"}``: 200 with a body that is not JSON;
  - ``{"kind": "empty_choices"}``: 200 with ``"choices": []``.

Any entry may carry ``"latency": SECONDS``: the server waits that long before it answers, as a model
that takes that long to generate (a benchmark or a demo with a model's pace; the client's timeout
applies as it would to a real server).

An entry with ``"when": TEXT`` is kept apart: it answers the first request whose body (the JSON text as
sent) holds TEXT, whatever its place in the script; the other entries answer in order. (A test scripts a
side request this way, e.g. devloop.condense's summary request, without knowing when it will come.)

When the script is exhausted every further request gets a 200 whose message has content
``"[script exhausted]"`` and no tool calls, so an agent ends its run instead of hanging.
"""

from __future__ import annotations

import collections
import json
import threading
from pathlib import Path
from typing import Any

EXHAUSTED = "[script exhausted]"
FAULT_KINDS = ("timeout", "reset", "malformed", "empty_choices")


def check_entry(entry: Any) -> str | None:
    """Why `entry` is not a valid script entry, or None when it is."""
    if not isinstance(entry, dict):
        return f"expected a JSON object, got {type(entry).__name__}"
    if "when" in entry and (not isinstance(entry["when"], str) or not entry["when"]):
        return "'when' must be a non-empty string"
    if "latency" in entry:
        latency = entry["latency"]
        if not isinstance(latency, int | float) or isinstance(latency, bool) or not 0 <= latency <= 3600:
            return f"'latency' must be a number of seconds from 0 to 3600, got {latency!r}"
    if "fault" in entry:
        fault = entry["fault"]
        if not isinstance(fault, dict):
            return "'fault' must be an object"
        if "status" in fault:
            status = fault["status"]
            if not isinstance(status, int) or not 400 <= status <= 599:
                return f"fault status must be an HTTP error code 400-599, got {status!r}"
            return None
        kind = fault.get("kind")
        if kind not in FAULT_KINDS:
            return f"fault needs 'status' or a 'kind' in {', '.join(FAULT_KINDS)}; got {kind!r}"
        if kind == "timeout" and not isinstance(fault.get("delay", 0), int | float):
            return "timeout fault 'delay' must be a number of seconds"
        return None
    if "stream" in entry:
        chunks = entry["stream"]
        if not isinstance(chunks, list) or not all(isinstance(c, dict) for c in chunks):
            return "'stream' must be a list of chunk objects"
        return None
    if entry.get("role", "assistant") != "assistant":
        return f"message role must be 'assistant', got {entry.get('role')!r}"
    if not isinstance(entry.get("content"), str | None):
        return "'content' must be a string or null"
    calls = entry.get("tool_calls", [])
    if not isinstance(calls, list):
        return "'tool_calls' must be a list"
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return f"tool_calls[{i}] needs a 'function' object with a 'name'"
    if "content" not in entry and not calls:
        return "a message needs 'content' or 'tool_calls'"
    return None


def load_script(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL script: one entry per line, blank lines ignored.

    Raises ValueError("file:line: problem") for a line that is not a valid entry, and
    ValueError naming the path when it cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read script: {exc}") from exc
    entries: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        problem = check_entry(entry)
        if problem:
            raise ValueError(f"{path}:{lineno}: {problem}")
        entries.append(entry)
    return entries


def reply_message(entry: dict[str, Any], serial: int) -> dict[str, Any]:
    """The OpenAI message for a script entry, tool calls filled in to the protocol's shape."""
    msg: dict[str, Any] = {"role": "assistant", "content": entry.get("content")}
    calls = []
    for i, call in enumerate(entry.get("tool_calls") or []):
        args = call["function"].get("arguments", "{}")
        calls.append(
            {
                "id": call.get("id") or f"call_{serial}_{i}",
                "type": call.get("type", "function"),
                "function": {
                    "name": call["function"]["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    if calls:
        msg["tool_calls"] = calls
    return msg


class ScriptBook:
    """A served script's state: the entries still to answer and what was asked so far (bodies and
    headers only with `keep_bodies`), shared by the server's request threads."""

    def __init__(self, script: list[dict[str, Any]], keep_bodies: bool) -> None:
        # popleft is O(1), list.pop(0) is O(n). Entries with `when` wait apart for a request that holds it.
        self.script = collections.deque(e for e in script if "when" not in e)
        self.routed = [e for e in script if "when" in e]
        self.keep_bodies = keep_bodies
        self.requests: list[dict[str, Any]] = []
        self.request_sizes: list[int] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_paths: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()

    def record(
        self, path: str, body: dict[str, Any], raw: bytes, headers: dict[str, str], refused: bool = False
    ) -> int:
        """Record a request; its serial number (1 for the first)."""
        with self._lock:
            self.request_sizes.append(len(raw))
            self.request_paths.append(path)
            if self.keep_bodies:
                self.requests.append(body)
                self.request_headers.append(headers)
            self.refused += refused
            return len(self.request_sizes)

    def take(
        self, path: str, body: dict[str, Any], raw: bytes, headers: dict[str, str]
    ) -> tuple[dict[str, Any] | None, int]:
        """Record the request and pop its entry: the first `when` entry whose text the body holds, else
        the next plain one (None when the script is exhausted)."""
        serial = self.record(path, body, raw, headers)
        with self._lock:
            for i, entry in enumerate(self.routed):
                if entry["when"].encode() in raw:
                    return self.routed.pop(i), serial
            return (self.script.popleft() if self.script else None), serial
