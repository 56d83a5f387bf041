"""Streamed chat completions: text shown as it arrives, tool calls assembled from their deltas.

Self-hosted servers differ in how they stream a tool call: vLLM sends the id and name in the first delta
of each `index` and `null` (or no) name after; llama.cpp repeats the id; Ollama sends a whole call in one
delta. Deltas are merged by `index` (position when a server omits it): a name or id, once given, is kept;
arguments are concatenated. A reply that streams `[TOOL_CALLS]` as plain text stays text here, and the
tool-call format (`auto`) parses it like any other reply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import openai

from devloop.models.base import ModelError
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
        model.sdk_client()  # built on the model itself, so every turn's copy shares one client
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
        if self.images:
            request = self._with_images(request)
        body = {**request, "stream": True, "stream_options": {"include_usage": True}}
        client = self.sdk_client()
        self.partial = []  # the text of this reply so far (kept when the turn is interrupted)
        try:
            raw = client.post("/chat/completions", body=body, cast_to=httpx.Response, stream=True)
            if not raw.headers.get("content-type", "").startswith("text/event-stream"):
                try:  # a server that does not stream answers with one JSON body
                    completion = self._parse(json.loads(raw.read()))
                except (ValueError, RecursionError):
                    raise _Transient("malformed reply (body is not JSON)") from None
                if completion.content:  # shown whole, as it came
                    self._shown(completion.content)
                return completion
            events = openai.Stream(cast_to=dict, response=raw, client=client)  # type: ignore[arg-type]
            return merge(events, self._shown)
        except openai.APITimeoutError:
            raise _Transient(f"timed out after {self.timeout:g}s waiting for {self.base_url}") from None
        except openai.APIConnectionError as exc:
            raise _Transient(f"connection to {self.base_url} failed ({exc})".replace("\n", " ")) from None
        except openai.APIStatusError as exc:
            error = self._status_error(exc)
            if self.images and exc.status_code in (400, 415, 422) and isinstance(error, ModelError):
                raise ModelError(
                    f"the server rejected the attached image ({error.reason}); this model may not take "
                    "images: set `images = false` for it in the chat config, or send no @image"
                ) from None
            raise error from None


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
