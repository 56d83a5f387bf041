"""Streamed chat completions: text shown as it arrives, tool calls assembled from their deltas.

Self-hosted servers differ in how they stream a tool call: vLLM sends the id and name in the first delta
of each `index` and `null` (or no) name after; llama.cpp repeats the id; Ollama sends a whole call in one
delta. Deltas are merged by `index` (position when a server omits it): a name or id, once given, is kept;
arguments are concatenated. A reply that streams `[TOOL_CALLS]` as plain text stays text here, and the
tool-call format (`auto`) parses it like any other reply.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from devloop.models.base import ModelError
from devloop.models.http import HttpStatusError
from devloop.models.openai_compat import OpenAICompatModel, _Transient
from devloop.types import Completion, Usage


class StreamingModel(OpenAICompatModel):
    on_text: Callable[[str], None] | None = None
    # OpenAI image content parts the user attached (`@image.png`): sent with the task, the conversation's
    # first user message, in every request of the turn (the same prefix each time, for the prefix cache)
    images: list[dict[str, Any]] = []
    partial: list[str] = []

    cancel: threading.Event | None = None  # set: the turn was interrupted, this request is abandoned

    @classmethod
    def of(
        cls,
        model: Any,
        on_text: Callable[[str], None] | None,
        images: list[dict[str, Any]] | None = None,
        cancel: threading.Event | None = None,
    ) -> Any:
        """`model` streaming (the client get_model built: URL, key, headers, retries); other models as
        they are."""
        if not isinstance(model, OpenAICompatModel):
            return model
        streaming = cls.__new__(cls)
        streaming.__dict__.update(vars(model))
        streaming.on_text = on_text
        streaming.images = list(images or [])
        streaming.partial = []
        streaming.cancel = cancel
        return streaming

    def _shown(self, delta: str) -> None:
        self.partial.append(delta)
        if self.on_text:
            self.on_text(delta)

    def _with_images(self, request: dict[str, Any]) -> dict[str, Any]:
        messages = list(request.get("messages") or [])
        first = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
        if first is None or not isinstance(messages[first].get("content"), str):
            return request
        parts = [{"type": "text", "text": messages[first]["content"]}, *self.images]
        messages[first] = {**messages[first], "content": parts}
        return {**request, "messages": messages}

    def _attempt(self, request: dict[str, Any]) -> Completion:
        """One streamed request; once the turn is interrupted, a failure is final (no retry: the request
        was abandoned, and a retry would take a reply meant for the next turn)."""
        if self.cancel is not None and self.cancel.is_set():
            raise ModelError("interrupted by the user")
        try:
            return self._stream(request)
        except _Transient:
            if self.cancel is not None and self.cancel.is_set():
                raise ModelError("interrupted by the user") from None
            raise

    def _stream(self, request: dict[str, Any]) -> Completion:
        """One streamed request on the plain client (httpx): the server-sent events read here, as the
        SDK's Stream reads them, without importing the SDK (~0.35 s of CPU before a chat's first turn)."""
        if self.images:
            request = self._with_images(request)
        body = {**request, "stream": True, "stream_options": {"include_usage": True}}
        http = self._client
        self.partial = []  # the text of this reply so far (kept when the turn is interrupted)
        try:
            with http.stream("/chat/completions", json.dumps(body).encode()) as raw:
                if not raw.is_success:
                    raw.read()
                    raise HttpStatusError(raw)
                if not raw.headers.get("content-type", "").startswith("text/event-stream"):
                    try:  # a server that does not stream answers with one JSON body
                        completion = self._parse(json.loads(raw.read()))
                    except (ValueError, RecursionError):
                        raise _Transient("malformed reply (body is not JSON)") from None
                    if completion.content:  # shown whole, as it came
                        self._shown(completion.content)
                    return completion
                return merge(events(raw.iter_lines()), self._shown)
        except httpx.TimeoutException:
            raise _Transient(f"timed out after {self.timeout:g}s waiting for {self.base_url}") from None
        except HttpStatusError as exc:
            error = self._status_error(exc)
            if self.images and exc.status_code in (400, 415, 422) and isinstance(error, ModelError):
                raise ModelError(
                    f"the server rejected the attached image ({error.reason}); this model may not take "
                    "images: set `images = false` for it in the chat config, or send no @image"
                ) from None
            raise error from None
        except httpx.HTTPError as exc:  # refused, reset, cut off mid-stream: as the SDK, a connection error
            raise _Transient(f"connection to {self.base_url} failed ({exc})".replace("\n", " ")) from None


def events(lines: Iterable[str]) -> Iterator[Any]:
    """The JSON data of each server-sent event, until `[DONE]`; an event carrying an error raises it."""
    data: list[str] = []
    name: str | None = None
    for line in itertools.chain(lines, [""]):  # as they arrive; "" ends the last event
        if line:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            continue
        if not data:  # a blank line ends an event; one without data is nothing
            name = None
            continue
        text, data = "\n".join(data), []
        if text.startswith("[DONE]"):
            return
        try:
            item = json.loads(text)
        except (ValueError, RecursionError):
            raise _Transient("malformed reply (a streamed event is not JSON)") from None
        if isinstance(item, dict) and item.get("error") and (name is None or name == "error"):
            error = item["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise ModelError(f"the server failed while streaming: {message or error}")
        name = None
        yield item


def merge(chunks: Iterable[Any], on_text: Callable[[str], None] | None = None) -> Completion:
    """One Completion from streamed chunk objects (dicts as the server sent them)."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage, finish = Usage(), None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if isinstance(chunk.get("usage"), dict):
            u = chunk["usage"]
            usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason") or finish
            if isinstance(delta.get("content"), str) and delta["content"]:
                text.append(delta["content"])
                if on_text:
                    on_text(delta["content"])
            for pos, part in enumerate(delta.get("tool_calls") or []):
                index = part.get("index")
                call = calls.setdefault(index if isinstance(index, int) else len(calls) + pos, {
                    "id": "", "type": "function", "function": {"name": "", "arguments": ""}})  # fmt: skip
                call["id"] = part.get("id") or call["id"]
                fn = part.get("function") or {}
                call["function"]["name"] = fn.get("name") or call["function"]["name"]
                args = fn.get("arguments")
                if isinstance(args, dict):  # Ollama: the arguments as an object
                    args = json.dumps(args)
                call["function"]["arguments"] += args or ""
    ordered = [calls[i] for i in sorted(calls)]
    for i, call in enumerate(ordered):
        call["id"] = call["id"] or f"call_{i}"
    return Completion(content="".join(text) or None, tool_calls=ordered, usage=usage, finish_reason=finish)
