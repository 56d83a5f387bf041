"""Driving `devloop chat` in a real terminal: a tmux pane (send-keys, capture-pane), and a model server that
streams its replies slowly, so the screen can be read while a reply is still arriving."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TMUX = shutil.which("tmux")


class Pane:
    """`devloop chat ARGS` in a detached tmux session of its own server."""

    def __init__(
        self, tmp: Path, args: list[str], env: dict[str, str] | None = None, width: int = 150
    ) -> None:
        self.rc = tmp / f"rc-{time.monotonic_ns()}"
        self.sock = Path(tempfile.mkdtemp(prefix="dl-chat-")) / "s"  # short: a socket path has a length limit
        self.tmux = [str(TMUX), "-S", str(self.sock), "-f", "/dev/null"]
        self.env = {**os.environ, "TERM": "xterm-256color", **(env or {})}
        argv = [sys.executable, "-m", "devloop", "chat", *args]
        self.started = time.monotonic()
        self.run("new-session", "-d", "-s", "chat", "-x", str(width), "-y", "50",
                 f"{shlex.join(argv)}; echo $? > {shlex.quote(str(self.rc))}; sleep 600")  # fmt: skip

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.tmux, *args], capture_output=True, text=True, env=self.env, check=check)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-S", "-200", "-t", "chat").stdout

    def wait_for(self, text: str, timeout: float = 30, after: int = 0) -> float:
        """Seconds until `text` shows (at or after character `after` of the screen's text)."""
        t0 = time.monotonic()
        while text not in self.screen()[after:]:
            assert not self.rc.exists(), f"chat ended before {text!r}:\n{self.screen()}"
            assert time.monotonic() - t0 < timeout, f"no {text!r} on the screen:\n{self.screen()}"
            time.sleep(0.01)
        return time.monotonic() - t0

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", "chat", *keys)

    def line(self, text: str) -> None:
        self.send("-l", text)
        self.send("Enter")

    def exit_code(self, timeout: float = 30) -> str:
        t0 = time.monotonic()
        while not self.rc.exists():
            assert time.monotonic() - t0 < timeout, f"chat did not end:\n{self.screen()}"
            time.sleep(0.05)
        return self.rc.read_text().strip()

    def close(self) -> None:
        self.run("kill-server", check=False)
        shutil.rmtree(self.sock.parent, ignore_errors=True)


def text_chunk(text: str) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


def call_chunk(name: str, args: dict[str, Any]) -> dict[str, Any]:
    delta = {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                             "function": {"name": name, "arguments": json.dumps(args)}}]}  # fmt: skip
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": "tool_calls"}],
    }


HOLD = "<hold>"  # in a reply's words: the stream pauses there until `release` is set (30 s at most)


class SlowServer:
    """An OpenAI-compatible server whose replies stream piece by piece, `delay` seconds apart. Each reply:
    (words of text, then a tool call (name, arguments)). Request bodies are kept in `requests`."""

    def __init__(self, replies: list[tuple[list[str], tuple[str, dict[str, Any]]]], delay: float) -> None:
        self.replies, self.delay, self.requests = list(replies), delay, []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                words, (name, args) = (
                    outer.replies.pop(0) if outer.replies else ([], ("finish", {"message": "?"}))
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for word in [*words, None]:
                        if word == HOLD:
                            outer.release.wait(30)
                            continue
                        chunk = text_chunk(word) if word is not None else call_chunk(name, args)
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                        self.wfile.flush()
                        time.sleep(outer.delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client hung up (Ctrl-C)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlowServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # a held reply ends, so that its thread can be joined
        self.httpd.shutdown()
        self.httpd.server_close()
