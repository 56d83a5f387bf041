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
error carrying the status, the decoded body and the response. Streaming (the chat) reads server-sent
events on the same httpx client. A plain-http server reached without a proxy (a local one: vLLM,
llama.cpp, the scripted model) is sent the same requests on the standard library's http.client
instead (`_Direct`), the same way of failing kept, and httpx is not even imported (~0.1 s of CPU at a
run's start) unless something takes its path: a stream, or an error status (it carries an
`httpx.Response` whichever path failed).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from devloop import __version__

if TYPE_CHECKING:
    import httpx


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
_LIMITS = {"max_connections": 1000, "max_keepalive_connections": 100}


def _proxied() -> bool:
    return any(os.environ.get(name) for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"))


def _tls(base_url: str) -> bool | ssl.SSLContext:
    """What httpx verifies TLS with: the default CA bundle (True), except for a plain-http URL reached
    without a proxy, which never speaks TLS: a context with no CA loaded (loading the bundle costs
    20-40 ms of CPU per client), which still refuses any certificate should TLS ever be attempted."""
    if not base_url.lower().startswith("http://") or _proxied():
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED, no trust anchors


class _Connection(http.client.HTTPConnection):
    """http.client sends a request's headers and its body in two writes: with Nagle's algorithm on,
    the body can wait for the headers' acknowledgement. Off, as httpx's sockets have it."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Direct:
    """Plain requests to a plain-http server reached without a proxy (a local vLLM, llama.cpp or the
    scripted model), on the standard library's http.client: ~0.3 ms less per request than httpx's
    machinery (URL model, h11 state machine, a poll of each pooled socket before reuse), which is a
    step's whole scaffold cost against a local server.

    Kept from httpx's behaviour: keep-alive connections pooled (any number of threads, one connection
    each at a time), the timeout on every socket operation, no redirect followed, and a pooled
    connection closed by the server while idle never used."""

    def __init__(self, base_url: str, headers: Mapping[str, str]) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.hostname is None:
            raise ValueError(f"no host in {base_url!r}")
        self.host, self.port = url.hostname, url.port or 80
        self.prefix = url.path.rstrip("/") + "/"
        self.headers = {**headers, "Connection": "keep-alive"}
        self._idle: list[http.client.HTTPConnection] = []
        self._busy: set[http.client.HTTPConnection] = set()  # each owned by the thread sending on it
        self._lock = threading.Lock()
        self.closed = False

    def request(
        self, method: str, path: str, content: bytes | None, timeout: float
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body). Raises HttpTimeout, HttpConnectionError or HttpClosed."""
        conn = self._take(timeout)
        try:
            conn.request(method, self.prefix + path.lstrip("/"), body=content, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError:
            self._drop(conn)
            raise HttpTimeout() from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            raise (
                HttpClosed() if self.closed else HttpConnectionError(str(exc) or type(exc).__name__)
            ) from exc
        if response.will_close:
            self._drop(conn)
        else:
            self._give(conn)
        return response.status, response.getheaders(), body

    def _take(self, timeout: float) -> http.client.HTTPConnection:
        """An idle pooled connection still open, else a new one. A request is never sent twice: as
        httpcore does, a pooled socket that reads as ready (the server closed it while idle) is
        dropped before anything is written to it."""
        while True:
            with self._lock:
                if self.closed:
                    raise HttpClosed()
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = _Connection(self.host, self.port, timeout=timeout)
            elif conn.sock is None or select.select([conn.sock], [], [], 0)[0]:
                conn.close()
                continue
            else:
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
            with self._lock:
                if not self.closed:
                    self._busy.add(conn)
                    return conn
            conn.close()
            raise HttpClosed()

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
            if not self.closed and len(self._idle) < _LIMITS["max_keepalive_connections"]:
                self._idle.append(conn)
                return
        conn.close()

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._busy.discard(conn)
        conn.close()

    def close(self) -> None:
        """Close the idle connections; wake a request still in flight (one given up on: a run's time
        limit, an interrupted turn) with a shutdown of its socket, so that its own thread fails at once
        and closes it (see `_wake`)."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
            for conn in self._busy:
                _wake(conn.sock)
        for conn in idle:
            conn.close()


def _wake(sock: socket.socket | None) -> None:
    """Shut down a socket another thread may be blocked on, rather than close it under that thread.

    A closed descriptor does not wake a thread in poll() on it, and the number is soon another file's
    (a pipe's, say). The kernel's poll looks each number up again when it wakes, holding that file for a
    moment; if its last other holder lets go meanwhile, the file's release waits for the polling thread
    to return from its syscall, which a held-open stream never lets it do. A chat turn interrupted mid-
    reply left its next turn's `git` spawn waiting on exactly that: on its exec-status pipe, whose last
    reference the abandoned reply's thread held. A shutdown instead ends the blocked read at once (EOF),
    so the owning thread closes its own socket."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _text(headers: list[tuple[str, str]], body: bytes) -> str:
    """The body decoded as httpx's `Response.text` does: the Content-Type's charset, else UTF-8."""
    for name, value in headers:
        if name.lower() == "content-type":
            for param in value.split(";")[1:]:
                key, _, charset = param.strip().partition("=")
                if key.lower() == "charset" and charset:
                    with contextlib.suppress(LookupError):
                        return body.decode(charset.strip('"'), errors="replace")
    return body.decode("utf-8", errors="replace")


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
        direct = base_url.lower().startswith("http://") and not _proxied()
        self._direct = _Direct(base_url, sent) if direct else None
        # httpx's client (and its TLS context) only when something needs it: a plain-http server
        # reached directly never does unless a reply is streamed, and building one is a millisecond.
        self._httpx: httpx.Client | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._sockets: list[socket.socket] = []  # every socket httpx's client connected (see _trace)
        self._users: dict[object, int] = {}  # exchanges on httpx's client in progress -> their thread
        self._ended = threading.Condition(self._lock)  # an exchange ended

    @property
    def _client(self) -> httpx.Client:
        with self._lock:
            if self._httpx is None:
                import httpx

                # The SDK joins a path onto the base URL with a trailing slash; httpx does the same when
                # it has one.
                self._httpx = httpx.Client(
                    base_url=self.base_url.rstrip("/") + "/",
                    timeout=self.timeout,
                    headers=self.headers,
                    limits=httpx.Limits(**_LIMITS),
                    verify=_tls(self.base_url),
                )
                if self._closed:
                    self._httpx.close()
            return self._httpx

    def request(
        self, method: str, path: str, *, content: bytes | None = None, timeout: float | None = None
    ) -> str:
        """The reply's text. Raises HttpTimeout, HttpConnectionError, HttpStatusError or HttpClosed."""
        if self._closed:
            raise HttpClosed()
        if self._direct is not None:
            status, headers, body = self._direct.request(
                method, path, content, self.timeout if timeout is None else timeout
            )
            if not 200 <= status < 300:
                import httpx  # the error carries an httpx.Response, as the httpx path's does

                raise HttpStatusError(httpx.Response(status, headers=headers, content=body))
            return _text(headers, body)
        import httpx  # this path's client and errors are httpx's (imported once, with the client)

        try:
            with self._using():
                response = self._client.request(
                    method,
                    path.lstrip("/"),
                    content=content,
                    timeout=self.timeout if timeout is None else timeout,
                    extensions={"trace": self._trace},
                )
        except httpx.TimeoutException:
            raise HttpTimeout() from None
        except Exception as exc:  # the SDK turns every other failure of the exchange into a connection error
            if self._closed:  # closed while the request was in flight (the run ended)
                raise HttpClosed() from None
            raise HttpConnectionError(str(exc)) from exc
        if not response.is_success:  # as the SDK (httpx's raise_for_status): a redirect is an error too
            raise HttpStatusError(response)
        return response.text

    @contextlib.contextmanager
    def stream(self, path: str, content: bytes) -> Iterator[httpx.Response]:
        """A POST whose reply is read as it arrives (`with ... as response`); raises httpx's errors.
        close() from another thread ends it at once (its read fails) and waits for it to be left."""
        with (
            self._using(),
            self._client.stream(
                "POST",
                path.lstrip("/"),
                content=content,
                timeout=self.timeout,
                extensions={"trace": self._trace},
            ) as response,
        ):
            yield response

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """An exchange on httpx's client, which close() waits for once it has woken it."""
        token = object()
        with self._lock:
            self._users[token] = threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                del self._users[token]
                self._ended.notify_all()

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace of an exchange: keeps each socket it connects (TCP, then TLS over it), so that
        close() can wake a thread waiting on one in any phase (for the headers, or mid-stream)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                with self._lock:
                    self._sockets = [s for s in self._sockets if s.fileno() != -1]  # drop the closed
                    self._sockets.append(sock)
                    if self._closed:
                        _wake(sock)

    def close(self, wait: float = 2.0) -> None:
        """Close the client. An exchange still in progress on another thread (a reply given up on) is
        woken first with a shutdown of every socket the client made, and left to its own thread to
        close (see `_wake`): httpx's pool would otherwise close a socket under it. Waits up to `wait`
        seconds for those."""
        me = threading.get_ident()
        with self._lock:
            self._closed = True
            client = self._httpx
            for sock in self._sockets:
                _wake(sock)
            self._ended.wait_for(lambda: all(t == me for t in self._users.values()), timeout=wait)
        if self._direct is not None:
            self._direct.close()
        if client is not None:
            client.close()
