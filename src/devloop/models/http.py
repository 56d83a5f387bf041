"""The HTTP exchange of a chat-completions request, on httpx: what devloop needs of the `openai` SDK for
a plain (not streamed) request, without importing the SDK.

devloop sends each body as JSON bytes it built itself and reads the reply as text, so of the SDK it used
one POST (and one GET of `/models`). Importing the SDK costs ~0.4 s of CPU (it builds hundreds of
pydantic models for its types) against ~0.1 s for httpx, the library the SDK itself sends through, and
each request costs ~0.4 ms less CPU without the SDK's request options and response wrapping. The
behaviour kept from the SDK: the same headers (bearer key, JSON content type, `OpenAI-Organization` and
`OpenAI-Project` from the environment as the SDK reads them; not its `User-Agent`, which names devloop,
nor its `X-Stainless-*` telemetry), the same timeout on every phase, the same
connection limits, proxies from the environment, no redirects followed, and the same three kinds of
failure: a timeout, a connection failure (any other transport error, the cause kept), and a status
error carrying the status, the decoded body and the response. Streaming (the chat) goes through the SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from devloop import __version__


class HttpTimeout(Exception):
    """The server did not answer within the timeout."""


class HttpConnectionError(Exception):
    """The request did not get an HTTP reply (refused, reset, a malformed response); `__cause__` says why."""


class HttpClosed(Exception):
    """The client was closed (its run ended): a request now is final, never worth a retry."""


class HttpStatusError(Exception):
    """An HTTP error status; `body` is the reply decoded as JSON when it is JSON, else its text (the
    SDK's `APIStatusError.body`, with an OpenAI-style `{"error": ...}` envelope kept)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        text = response.text.strip()
        body: Any = text or None
        with contextlib.suppress(ValueError, RecursionError):
            body = json.loads(text)
        self.body = body
        super().__init__(f"Error code: {self.status_code} - {body}")


# The SDK's connection limits (its DEFAULT_CONNECTION_LIMITS), so a pool of workers behaves the same.
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


def _tls(base_url: str) -> bool | ssl.SSLContext:
    """What httpx verifies TLS with: the default CA bundle (True), except for a plain-http URL reached
    without a proxy, which never speaks TLS: a context with no CA loaded (loading the bundle costs
    20-40 ms of CPU per client), which still refuses any certificate should TLS ever be attempted."""
    proxied = any(os.environ.get(name) for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"))
    if not base_url.lower().startswith("http://") or proxied:
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED, no trust anchors


class ChatHttp:
    """One pooled HTTP client for `base_url`; thread-safe as httpx's Client is."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float, headers: Mapping[str, str] | None = None
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        sent = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"devloop/{__version__}",
            "Authorization": f"Bearer {api_key}",
        }
        for variable, header in (
            ("OPENAI_ORG_ID", "OpenAI-Organization"),
            ("OPENAI_PROJECT_ID", "OpenAI-Project"),
        ):
            if os.environ.get(variable):
                sent[header] = os.environ[variable]
        sent.update(headers or {})
        self.headers = sent
        # The SDK joins a path onto the base URL with a trailing slash; httpx does the same when it has one.
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            timeout=timeout,
            headers=sent,
            limits=_LIMITS,
            verify=_tls(base_url),
        )

    def request(
        self, method: str, path: str, *, content: bytes | None = None, timeout: float | None = None
    ) -> str:
        """The reply's text. Raises HttpTimeout, HttpConnectionError, HttpStatusError or HttpClosed."""
        if self._client.is_closed:
            raise HttpClosed()
        try:
            response = self._client.request(
                method,
                path.lstrip("/"),
                content=content,
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.TimeoutException:
            raise HttpTimeout() from None
        except Exception as exc:  # the SDK turns every other failure of the exchange into a connection error
            if self._client.is_closed:  # closed while the request was in flight (the run ended)
                raise HttpClosed() from None
            raise HttpConnectionError(str(exc)) from exc
        if not response.is_success:  # as the SDK (httpx's raise_for_status): a redirect is an error too
            raise HttpStatusError(response)
        return response.text

    def stream(self, path: str, content: bytes) -> contextlib.AbstractContextManager[httpx.Response]:
        """A POST whose reply is read as it arrives (`with ... as response`); raises httpx's errors."""
        return self._client.stream("POST", path.lstrip("/"), content=content, timeout=self.timeout)

    def close(self) -> None:
        self._client.close()
