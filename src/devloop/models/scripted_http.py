"""The scripted model's wire: the HTTP handler that answers each route from a ScriptBook, and the socket
server that holds the book and the settings (see devloop.models.scripted_server for the behaviour)."""

from __future__ import annotations

import json
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devloop.models.script import EXHAUSTED, ScriptBook, reply_message

ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/fim/completions")


def _estimate_tokens(length: int) -> int:
    return max(1, length // 4)


_FIRST_MODEL = re.compile(rb'\s*\{\s*"model"\s*:\s*"([^"\\]{0,200})"')


def _outline(raw: bytes) -> dict[str, Any] | None:
    """What a reply needs from a body that is not kept, without decoding it (decoding a long history
    costs milliseconds a request): None unless it is braced like an object; its model when it comes first."""
    if raw.lstrip()[:1] != b"{" or raw.rstrip()[-1:] != b"}":
        return None
    found = _FIRST_MODEL.match(raw)
    return {"model": found.group(1).decode("utf-8", "replace")} if found else {}


class _Handler(BaseHTTPRequestHandler):
    server: ScriptHTTPServer
    # Keep-alive: a client reuses its connection, as with a real server. Faults close theirs (_fault).
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: the reply is not held back waiting for an ACK
    wbufsize = -1  # buffered: headers and body leave in one write (flushed in _send)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _send(
        self, status: int, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass  # the client gave up (e.g. after its timeout): nothing to answer

    def _error(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._send(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers
        )

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            model: dict[str, Any] = {
                "id": self.server.model_name,
                "object": "model",
                "created": 0,
                "owned_by": "devloop",
            }
            if self.server.context_window is not None:  # as vLLM lists it
                model["max_model_len"] = self.server.context_window
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"no route for GET {self.path}")

    def do_POST(self) -> None:
        route = self.path.rstrip("/")
        if route not in ROUTES:
            self._error(404, f"no route for POST {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            decode = self.server.keep_bodies or route != "/v1/chat/completions"
            body = json.loads(raw or b"null") if decode else _outline(raw)
        except (ValueError, OSError):
            raw, body = b"", None
        if not isinstance(body, dict):
            self.close_connection = True  # the rest of the stream may be garbage too
            self._error(400, "request body must be a JSON object")
            return
        if self._refused(route, body, raw):
            return
        entry, serial = self.server.book.take(route, body, raw, dict(self.headers))
        if entry is None:
            entry = {"content": EXHAUSTED}
        if entry.get("latency"):  # a model's time to answer; a server that is closing stops waiting
            self.server.stopping.wait(float(entry["latency"]))
        if "fault" in entry:
            self.close_connection = True
            self._fault(entry["fault"], body, len(raw), serial)
        elif "stream" in entry:
            self._stream(entry["stream"])
        elif route == "/v1/completions":
            self._text_completion(entry, body, len(raw), serial)
        else:  # chat completions, and Mistral's FIM, which answers in the chat completion's shape
            self._answer(entry, body, len(raw), serial)

    def _refused(self, route: str, body: dict[str, Any], raw: bytes) -> bool:
        """Answer as a server that cannot take the request (over its context window, or a `suffix` it
        does not support); the request is recorded, no script entry is consumed."""
        why = None
        window = self.server.context_window
        wanted = _estimate_tokens(len(raw))
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            wanted += max_tokens
        if window is not None and wanted > window:
            why = (  # vLLM's wording, which clients recognise
                f"This model's maximum context length is {window} tokens. However, you requested {wanted} "
                "tokens. Please reduce the length of the messages or completion."
            )
        elif route == "/v1/completions" and body.get("suffix") is not None and not self.server.suffix:
            why = "suffix is not currently supported"
        if why is None:
            return False
        self.server.book.record(route, body, raw, dict(self.headers), refused=True)
        self._error(400, why, "context_length_exceeded" if "context length" in why else None)
        return True

    def _text_completion(
        self, entry: dict[str, Any], request: dict[str, Any], size: int, serial: int
    ) -> None:
        text = entry.get("content") or ""
        prompt, completion = _estimate_tokens(size), _estimate_tokens(len(text))
        self._send(
            200,
            {
                "id": f"cmpl-scripted-{serial}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": request.get("model", self.server.model_name),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
        )

    def _answer(self, entry: dict[str, Any], request: dict[str, Any], size: int, serial: int) -> None:
        msg = reply_message(entry, serial)
        # From the body's size, not a re-encoding of its messages: constant work however long the history.
        usage = entry.get("usage") or {
            "prompt_tokens": _estimate_tokens(size),
            "completion_tokens": _estimate_tokens(
                len(msg["content"] or "") + len(json.dumps(msg.get("tool_calls", [])))
            ),
        }
        prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        finish = entry.get("finish_reason") or ("tool_calls" if msg.get("tool_calls") else "stop")
        self._send(
            200,
            {
                "id": f"chatcmpl-scripted-{serial}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", self.server.model_name),
                "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
        )

    def _stream(self, chunks: list[dict[str, Any]]) -> None:
        """A recorded streamed reply, sent as server-sent events chunk by chunk, then `[DONE]`."""
        self.close_connection = True  # no Content-Length: the end of the body is the connection's
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            pass

    def _fault(self, fault: dict[str, Any], request: dict[str, Any], size: int, serial: int) -> None:
        if "status" in fault:
            headers = {}
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            message = fault.get("message") or f"scripted fault: HTTP {fault['status']}"
            self._error(fault["status"], message, fault.get("code"), headers)
        elif fault["kind"] == "timeout":
            self.server.stopping.wait(float(fault.get("delay", 30)))
            self._answer({"content": "[timed out]"}, request, size, serial)
        elif fault["kind"] == "reset":
            # Linger 0 makes close() send RST instead of FIN: the client sees a reset connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif fault["kind"] == "malformed":
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": ')
        else:  # empty_choices
            self._send(
                200,
                {
                    "id": f"chatcmpl-scripted-{serial}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", ""),
                    "choices": [],
                },
            )


class ScriptHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    timeout = 0  # handle_request() accepts what is pending and never waits (the accept loop waits)

    def __init__(
        self,
        script: list[dict[str, Any]],
        model_name: str,
        keep_bodies: bool,
        context_window: int | None = None,
        suffix: bool = True,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.book = ScriptBook(script, keep_bodies)
        self.model_name = model_name
        self.keep_bodies = keep_bodies
        self.context_window = context_window
        self.suffix = suffix
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (after its timeout, or mid-reply) is expected here, not a server bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
