"""A real OpenAI-compatible HTTP server that answers from a script, for demos and tests.

Each request to ``POST /v1/chat/completions`` consumes one entry of a script (its format: devloop.models.script).

``POST /v1/completions`` (legacy text completions, with an optional ``suffix`` for fill-in-the-middle)
and ``POST /v1/fim/completions`` (Mistral's FIM, answered in the chat-completion shape) consume entries
the same way; the entry's ``content`` is the completion text. ``suffix=False`` makes the server refuse a
``suffix`` as vLLM does. ``context_window=N`` makes it list ``max_model_len: N`` in ``GET /v1/models``
(as vLLM does) and refuse, with vLLM's 400 "maximum context length" error, a request whose estimated
tokens (body bytes / 4, plus its max_tokens) exceed N; a refused request is recorded but consumes no entry.

``server.requests`` holds every chat-completion request body, in order, so tests can assert what the
model was sent; ``keep_bodies=False`` keeps only ``server.request_sizes`` (bytes per request) and does
not decode bodies (it checks that one is braced like a JSON object, and reads its ``model`` when that key
comes first), so that a long run (a replayed oracle, a benchmark) holds no growing history and each
request costs the same however long the conversation. The server speaks HTTP/1.1 with
keep-alive and TCP_NODELAY, so a client's round trip stays one small exchange on an open connection; a
fault closes its connection, so it never leaks into the next request. ``GET /v1/models`` lists the one
model. Run ``python -m devloop.models.scripted_server
script.jsonl`` to serve a script by hand.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
from collections.abc import Iterable
from typing import Any

from devloop.models.script import EXHAUSTED as EXHAUSTED  # re-exported: tests and callers name it here
from devloop.models.script import check_entry, load_script
from devloop.models.scripted_http import ScriptHTTPServer


class ScriptedServer:
    """An OpenAI-compatible server on 127.0.0.1 (free port) replying from `script`; see the module doc.

    Use as a context manager, or call close(). `url` is the base URL to give a client (ends in /v1).
    `keep_bodies=False`: record only each request's size (`request_sizes`), not its body and headers, and
    do not decode bodies (see the module doc).
    Raises ValueError("script entry N: problem") for an invalid entry.
    """

    def __init__(
        self,
        script: Iterable[dict[str, Any]],
        *,
        model_name: str = "scripted",
        keep_bodies: bool = True,
        context_window: int | None = None,
        suffix: bool = True,
    ) -> None:
        entries = list(script)
        for i, entry in enumerate(entries, start=1):
            problem = check_entry(entry)
            if problem:
                raise ValueError(f"script entry {i}: {problem}")
        self._httpd = ScriptHTTPServer(entries, model_name, keep_bodies, context_window, suffix)
        # close() writes to this pair to end the accept loop at once (serve_forever's shutdown waits
        # for its next poll: ~25 ms on every scripted run's close at a 0.05 s interval).
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="scripted-server", daemon=True)
        self._thread.start()
        self._closed = False

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake_r in ready:
                    return
                self._httpd.handle_request()  # the listening socket is readable: accepts without waiting

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat-completion request body received, in order."""
        return self._httpd.book.requests

    @property
    def request_sizes(self) -> list[int]:
        """The size in bytes of each chat-completion request body received, in order."""
        return self._httpd.book.request_sizes

    @property
    def request_paths(self) -> list[str]:
        """The path of each request in `request_sizes` (e.g. /v1/chat/completions)."""
        return self._httpd.book.request_paths

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The HTTP headers of each request in `requests`."""
        return self._httpd.book.request_headers

    @property
    def remaining(self) -> int:
        """How many script entries have not been consumed yet."""
        return len(self._httpd.book.script) + len(self._httpd.book.routed)

    @property
    def refused(self) -> int:
        """How many requests were refused as over the context window (or for an unsupported suffix)."""
        return self._httpd.book.refused

    def close(self) -> None:
        """Stop serving; wakes any request sleeping in a timeout fault. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._httpd.stopping.set()
        self._wake_w.send(b"\0")
        self._thread.join(timeout=5)
        self._httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """Serve a JSONL script until interrupted: `python -m devloop.models.scripted_server FILE`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m devloop.models.scripted_server",
        description="Serve a scripted model over the OpenAI chat-completions protocol on 127.0.0.1 "
        "(a free port, printed at start) until Ctrl-C. Each request consumes one line of the script: "
        "an assistant message or a fault (see the module's documentation).",
    )
    parser.add_argument("script", metavar="SCRIPT.jsonl", help="one JSON entry per line")
    parser.add_argument(
        "--model-name", default="scripted", help="the model name /v1/models lists (default: scripted)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)  # bad usage: exit 2
    try:
        script = load_script(args.script)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with ScriptedServer(script, model_name=args.model_name) as server:
        print(f"serving {len(script)} entries at {server.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
