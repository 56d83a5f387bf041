"""Closing the model's client while another thread still reads a reply (a request given up on: a chat
turn interrupted mid-reply, a run's time limit). The reading thread must be woken and left to close its
own socket: a descriptor closed under a thread blocked in poll() on it does not wake that thread, and
its number is soon another file's (see models/http.py's `_wake`)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devloop.models.http import ChatHttp, HttpClosed


@pytest.fixture
def held() -> Iterator[tuple[str, threading.Event]]:
    """A server whose replies start (a stream's first event; a plain reply's headers) and then hold until
    the test ends."""
    release = threading.Event()

    class Hold(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("silent"):  # not even the headers (a model still thinking)
                release.wait(30)
                return
            self.send_response(200)
            if self.path.endswith("stream"):
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(b'data: {"n": 1}\n\n')
            else:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"partial": ')
            self.wfile.flush()
            release.wait(30)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hold)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def reader(target: Any) -> tuple[threading.Thread, list[object], threading.Event]:
    got: list[object] = []
    started = threading.Event()

    def run() -> None:
        try:
            target(started, got)
        except BaseException as exc:  # what the reading thread ended with
            got.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    time.sleep(0.2)  # well inside its blocking read
    return thread, got, started


def test_close_wakes_a_stream_read_on_another_thread_and_waits_for_it(held: Any) -> None:
    url, _release = held
    client = ChatHttp(url, "k", timeout=30)

    def read(started: threading.Event, got: list[object]) -> None:
        with client.stream("/stream", b"{}") as response:
            for line in response.iter_lines():
                got.append(line)
                started.set()

    thread, got, _ = reader(read)
    t0 = time.monotonic()
    client.close()
    closed_in = time.monotonic() - t0
    thread.join(5)
    # Without the wake the reader stays in its read until the server lets go (30 s here), and the
    # socket is closed under it.
    assert not thread.is_alive()
    assert closed_in < 2
    assert got[0] == 'data: {"n": 1}'
    assert client._users == {}


def test_close_wakes_a_stream_still_waiting_for_the_reply_headers(held: Any) -> None:
    url, _release = held
    client = ChatHttp(url, "k", timeout=30)

    def wait(started: threading.Event, got: list[object]) -> None:
        started.set()
        with client.stream("/silent", b"{}") as response:
            got.append(response.status_code)

    thread, got, _ = reader(wait)
    t0 = time.monotonic()
    client.close()
    closed_in = time.monotonic() - t0
    thread.join(5)
    assert not thread.is_alive()  # not left waiting for the headers until the server lets go (30 s)
    assert closed_in < 2
    assert len(got) == 1 and isinstance(got[0], Exception), got  # the read failed: nothing was replied
    assert client._users == {}


def test_close_wakes_a_plain_request_in_flight_on_the_direct_path(held: Any) -> None:
    url, _release = held
    client = ChatHttp(url, "k", timeout=30)
    assert client._direct is not None

    def ask(started: threading.Event, got: list[object]) -> None:
        started.set()
        got.append(client.request("POST", "/plain", content=b"{}"))

    thread, got, _ = reader(ask)
    client.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(got) == 1 and isinstance(got[0], HttpClosed), got  # the run ended: final, never retried
    assert client._direct._busy == set()
