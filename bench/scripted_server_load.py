"""The scripted model server under an agent's load: round trip per step and memory held, over 300 steps.

Each step sends what an agent sends: the whole history so far, grown by one 3.5 KB observation a step,
over one `http.client` connection (reopened only when the server closes it), so that the figure is the
server's and the wire's, not a client library's. The body is encoded before the clock starts. Reported:
the median round trip of the first and of the last 20 steps, each as a ratio to THE FLOOR (the same
stdlib HTTP/1.1 exchange with a handler that reads the body and answers a constant: the cost of moving
the bytes, which grows with the body), and the memory the server still holds after the run (tracemalloc,
in a separate pass, as tracing slows everything; the client's bodies are freed after each step), and how long
close() took (once per scripted run; the floor's is a stdlib serve_forever's shutdown, which waits for the
serving loop's next poll). With --against REV the
server module of that git revision is measured beside the current one, in alternating rounds.

    python bench/scripted_server_load.py [--steps 300] [--rounds 3] [--against REV]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from devloop.models import scripted_server

OBSERVATION = ("line of a command's output, as an agent would see it\n" * 66)[:3500]


def _import_as(name: str, source: str) -> ModuleType:
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _show(rev: str, path: str) -> str | None:
    proc = subprocess.run(
        ["git", "show", f"{rev}:{path}"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    return proc.stdout if proc.returncode == 0 else None


def old_module(rev: str) -> ModuleType:
    """scripted_server.py as of git revision `rev`, imported under another name, with that revision's
    scripted_http.py (the handler, split out later) where it has one."""
    source = _show(rev, "src/devloop/models/scripted_server.py")
    if source is None:
        raise SystemExit(f"--against {rev}: no src/devloop/models/scripted_server.py there")
    wire = _show(rev, "src/devloop/models/scripted_http.py")
    if wire is not None:
        _import_as("scripted_http_old", wire)
        source = source.replace("from devloop.models.scripted_http import", "from scripted_http_old import")
    return _import_as("scripted_server_old", source)


class _BareHandler(BaseHTTPRequestHandler):
    """The floor: the same stdlib HTTP/1.1 exchange, reading the body and answering a constant."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    REPLY = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}).encode()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.REPLY)))
        self.end_headers()
        self.wfile.write(self.REPLY)


class _Bare:
    """A stand-in for ScriptedServer with the floor's handler."""

    def __init__(self, script: Any) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BareHandler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def run_once(module: Any, steps: int, traced: bool, **kwargs: Any) -> tuple[list[float], int, float]:
    """Round trips per step, (when `traced`: tracemalloc slows everything) the bytes still held, and the
    seconds close() took (every scripted run pays it once, at its end)."""
    script = [{"content": "ok"}] * steps
    gc.collect()
    if traced:
        tracemalloc.start()
    server = module.ScriptedServer(script, **kwargs)
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.split(":")[2].split("/")[0]))
    messages: list[dict[str, str]] = [{"role": "user", "content": "task"}]
    times = []
    try:
        for i in range(steps):
            body = json.dumps({"model": "m", "messages": messages}).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
            times.append(time.perf_counter() - t0)
            messages.append({"role": "assistant", "content": reply["choices"][0]["message"]["content"]})
            messages.append({"role": "user", "content": f"{i}\n{OBSERVATION}"})
        del body
        messages.clear()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] if traced else 0
    finally:
        tracemalloc.stop()
        conn.close()
        t0 = time.perf_counter()
        server.close()
        closing = time.perf_counter() - t0
    return times, held, closing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also measure the server of this git revision")
    args = ap.parse_args()
    sides: dict[str, tuple[Any, dict[str, Any]]] = {
        "floor (read body, constant reply)": (SimpleNamespace(ScriptedServer=_Bare), {}),
        "current, keep_bodies=False": (scripted_server, {"keep_bodies": False}),
        "current, keep_bodies=True": (scripted_server, {}),
    }
    if args.against:
        sides[f"at {args.against}"] = (old_module(args.against), {})
    results: dict[str, list[tuple[list[float], int, float]]] = {name: [] for name in sides}
    floor = next(iter(sides))
    names = list(sides)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            module, kwargs = sides[name]
            results[name].append(run_once(module, args.steps, False, **kwargs))
    held = {name: run_once(module, args.steps, True, **kwargs)[1] for name, (module, kwargs) in sides.items()}
    print(f"{args.steps} growing requests (3.5 KB more a step), {args.rounds} alternating rounds")

    def median_ms(runs: list[tuple[list[float], int, float]], part: slice) -> float:
        return statistics.median(statistics.median(t[part]) for t, _, _ in runs) * 1000

    ends = (slice(0, 20), slice(-20, None))
    base = [median_ms(results[floor], part) for part in ends]
    for name, runs in results.items():
        first, last = (median_ms(runs, part) for part in ends)
        closing = statistics.median(c for _, _, c in runs) * 1000
        print(
            f"  {name:<34} round trip first 20 {first:5.2f} ms ({first / base[0]:3.1f}x floor), "
            f"last 20 {last:5.2f} ms ({last / base[1]:3.1f}x floor); held after {held[name] / 2**20:6.1f} MB; "
            f"close {closing:5.2f} ms"
        )


if __name__ == "__main__":
    main()
