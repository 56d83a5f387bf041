"""The scripted model server every side talks to, in a process of its own or in a thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from devloop.models.scripted_server import ScriptedServer

SENT: dict[str, list[int]] = {}  # the request body sizes the server received, per side's last run


# A scripted server in its own process: prints its URL, serves until stdin closes, then prints the
# request sizes it received (what measure() compares between the floor and devloop).
_SERVE = """
import json, sys
from devloop.models.scripted_server import ScriptedServer, load_script
with ScriptedServer(load_script(sys.argv[1]), keep_bodies=False) as server:
    print(server.url, flush=True)
    sys.stdin.read()
    print(json.dumps(server.request_sizes), flush=True)
"""
SERVER = {"kind": "process"}


class _ProcessServer:
    """ScriptedServer's interface as the bench uses it (url, request_sizes, a context manager), served
    from another process."""

    def __init__(self, script: list[dict[str, Any]], keep_bodies: bool = False) -> None:
        fd, self._path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "w") as f:
            f.write("".join(json.dumps(entry) + "\n" for entry in script))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, self._path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None and self._proc.stdin is not None
        self.url = self._proc.stdout.readline().strip()
        self.request_sizes: list[int] = []

    def __enter__(self) -> _ProcessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdout is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        self.request_sizes = json.loads(self._proc.stdout.readline() or "[]")
        self._proc.wait()
        os.unlink(self._path)


def serve(script: list[dict[str, Any]]) -> Any:
    """The scripted server of the kind this run uses (SERVER["kind"])."""
    if SERVER["kind"] == "process":
        return _ProcessServer(script)
    return ScriptedServer(script, keep_bodies=False)
