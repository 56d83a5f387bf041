"""A Model for any OpenAI-compatible chat-completions server.

A plain request goes through `devloop.models.http` (httpx, or http.client to a local plain-http server;
the SDK's headers, timeouts and kinds of failure without its ~0.4 s import); `sdk_client()` builds the
`openai` SDK's client on first use, with the same settings, for what needs the SDK.

Retries are ours (an SDK client runs with ``max_retries=0``): counted for the trajectory, and also for
replies an agent cannot use (a body that is not JSON, no choices). Transient failures (429, 408/409, 5xx, timeouts, connection errors, malformed or
empty replies) back off exponentially with jitter, honouring ``Retry-After``; final ones (auth, model
not found, context length, other 4xx) raise ModelError at once.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from devloop.models.base import ModelError
from devloop.models.body import MessageCache
from devloop.models.http import ChatHttp, HttpClosed, HttpConnectionError, HttpStatusError, HttpTimeout
from devloop.types import Completion, SamplingParams, Usage

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

# A server asking for a longer pause than this is not worth waiting on inside one agent step.
MAX_RETRY_AFTER_S = 120.0
_CONTEXT_MARKERS = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
)


class _Transient(Exception):
    """A failure worth retrying; `reason` is the one-line summary, `retry_after` the server's hint."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); None if absent."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            pass
        if name == "retry-after":
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - time.time())
    return None


class _Response(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


class StatusError(Protocol):
    """An HTTP error status as `HttpStatusError` and the SDK's `APIStatusError` both carry it."""

    @property
    def status_code(self) -> int: ...
    @property
    def body(self) -> object: ...
    @property
    def response(self) -> _Response: ...


def server_message(exc: StatusError) -> tuple[str, str | None]:
    """The server's error message (one line) and error code, from an OpenAI-style error body."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message, code = inner.get("message"), inner.get("code")
        else:
            message, code = inner, None
    else:
        message, code = body or exc.response.text, None
    text = " ".join(str(message or f"HTTP {exc.status_code}").split())
    return (text[:300] + "...") if len(text) > 300 else text, (str(code) if code is not None else None)


class OpenAICompatModel:
    """Chat completions from `base_url` (e.g. ``http://127.0.0.1:8000/v1``) for model `name`.

    `max_retries` bounds retries of transient failures; `timeout` is per request in seconds.
    `backoff_base`/`backoff_cap` shape the exponential backoff (tests make them small).
    `api_key_env` only names the key's variable in the authentication error. `on_close` runs once
    in close() (e.g. to stop a scripted server).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 5,
        timeout: float = 600.0,
        extra_headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        api_key_env: str = "OPENAI_API_KEY",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.name = name
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.api_key_env = api_key_env
        self._on_close = on_close
        self._encoded = MessageCache()
        self._extra_headers = dict(extra_headers or {})
        self._client = ChatHttp(base_url, api_key, timeout=timeout, headers=self._extra_headers)
        self._sdk: openai.OpenAI | None = None

    def sdk_client(self) -> openai.OpenAI:
        """The `openai` SDK's client on the same URL, key, timeout and headers (built on first use), for
        what the plain client does not do: a streamed reply."""
        if self._sdk is None:
            import openai

            self._sdk = openai.OpenAI(
                api_key=self._client.api_key,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,
                default_headers=self._extra_headers,
            )
        return self._sdk

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> Completion:
        """One assistant reply; retries transient failures. Raises ModelError (see module doc)."""
        request: dict[str, Any] = {"model": self.name, "messages": messages}
        if tools is not None:
            request["tools"] = tools
            request["tool_choice"] = "auto"
        for key in ("temperature", "top_p", "max_tokens", "seed", "stop"):
            value = getattr(params, key)
            if value is not None:
                request[key] = value
        request.update(params.extra_body or {})

        started = time.monotonic()
        retries = 0
        while True:
            try:
                completion = self._attempt(request)
            except _Transient as exc:
                if retries >= self.max_retries:
                    raise ModelError(f"{exc.reason} after {retries} retries", retryable=True) from None
                delay = self._delay(retries, exc.retry_after)
                log.warning(
                    "model %s: %s; retry %d/%d in %.2fs",
                    self.name,
                    exc.reason,
                    retries + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
                retries += 1
                continue
            completion.latency_s = time.monotonic() - started
            completion.retries = retries
            return completion

    def _delay(self, retries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # Jitter in [50%, 100%] spreads out parallel workers that failed together.
        return min(self.backoff_cap, self.backoff_base * 2.0**retries) * random.uniform(0.5, 1.0)

    def _attempt(self, request: dict[str, Any]) -> Completion:
        """One HTTP request. Raises _Transient to retry, ModelError when final."""
        try:
            # The body is sent as bytes joined from each message's cached encoding: re-encoding the whole
            # history on every request is O(conversation) per step (~3.5 ms at 300 steps, ~1 MB).
            body = self._encoded.body(request)
            text = self._client.request("POST", "/chat/completions", content=body)
        except HttpTimeout:
            raise _Transient(f"timed out after {self.timeout:g}s waiting for {self.base_url}") from None
        except HttpClosed:
            raise ModelError("the model client was closed (the run has ended)", retryable=False) from None
        except HttpConnectionError as exc:
            cause = exc.__cause__ or exc
            raise _Transient(
                f"connection to {self.base_url} failed ({type(cause).__name__}: {cause})".replace("\n", " ")
            ) from None
        except HttpStatusError as exc:
            raise self._status_error(exc) from None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python decodes
            raise _Transient("malformed reply (body is not JSON)") from None
        return self._parse(data)

    def _status_error(self, exc: StatusError) -> Exception:
        status = exc.status_code
        message, code = server_message(exc)
        lowered = f"{code} {message}".lower()
        if status == 429:
            return _Transient("rate limited (429)", parse_retry_after(exc.response.headers))
        if status >= 500 or status in (408, 409):
            return _Transient(f"server error ({status})", parse_retry_after(exc.response.headers))
        if status in (401, 403):
            return ModelError(
                f"authentication failed ({status}): check {self.api_key_env} (server said: {message})"
            )
        if status == 404:
            return ModelError(f"model not found (404): {self.name!r} at {self.base_url}: {message}")
        if status in (400, 413, 422) and any(marker in lowered for marker in _CONTEXT_MARKERS):
            return ModelError(f"context length exceeded: {message}", context_length=True)
        return ModelError(f"bad request ({status}): {message}")

    def _parse(self, data: Any) -> Completion:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise _Transient("empty reply (no choices)")
        if not isinstance(choices, list):
            raise _Transient(f"malformed reply (choices is {type(choices).__name__}, not a list)")
        choice = choices[0]
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            raise _Transient("malformed reply (choice has no message)")
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        reason = choice.get("finish_reason")
        return Completion(
            content=msg.get("content"),
            tool_calls=_tool_calls(msg.get("tool_calls")),
            usage=Usage(
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
            ),
            finish_reason=reason if isinstance(reason, str) else None,
        )

    def context_window(self) -> int | None:
        """The model's context window in tokens as the server lists it (`GET /models`), or None when the
        server does not say (or cannot be reached in 10 s); see `listed_window`."""
        try:
            text = self._client.request("GET", "/models", timeout=10.0)
            data = json.loads(text)
        except (HttpTimeout, HttpConnectionError, HttpStatusError, ValueError, RecursionError):
            return None
        return listed_window(data, self.name)

    def close(self) -> None:
        """Close the HTTP clients and run `on_close` (once)."""
        self._client.close()
        if self._sdk is not None:
            self._sdk.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


# The fields servers list a model's context window under: vLLM and SGLang `max_model_len`, OpenRouter
# and others `context_length`, LM Studio `max_context_length`.
WINDOW_FIELDS = ("max_model_len", "context_length", "max_context_length", "context_window")


def listed_window(listing: Any, name: str) -> int | None:
    """The context window of model `name` in a `/models` listing: its entry's first WINDOW_FIELDS value
    (the only entry's, when none is named `name`: a local server serves one model under its own id)."""
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return None
    entries = [e for e in entries if isinstance(e, dict)]
    named = [e for e in entries if e.get("id") == name] or (entries if len(entries) == 1 else [])
    for entry in named[:1]:
        for key in WINDOW_FIELDS:
            value = entry.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _count(value: Any) -> int:
    """A token count from the reply; anything but a non-negative whole number counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return 0
    return int(min(value, 1 << 62))


def _tool_calls(calls: Any) -> Any:
    """The reply's tool calls; a malformed list or entry is passed on as it came, for the format layer
    to explain to the model (FormatError) instead of crashing here."""
    if not calls:
        return []
    return [_tool_call(call, i) for i, call in enumerate(calls)] if isinstance(calls, list) else calls


def _tool_call(call: Any, index: int) -> Any:
    """A native tool call in the protocol's exact shape; arguments always a JSON string."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    fn = call["function"]
    args = fn.get("arguments")
    if not isinstance(args, str):
        try:
            args = json.dumps(args if args is not None else {})
        except (ValueError, RecursionError):  # nested too deep to encode again: not JSON, so refused
            args = "<arguments nested too deeply to encode>"
    return {
        "id": call.get("id") or f"call_{index}",
        "type": "function",
        "function": {"name": fn.get("name") or "", "arguments": args},
    }
