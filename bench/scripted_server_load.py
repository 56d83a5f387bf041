"""The scripted model server under an agent's load: round trip per step and memory held, over 300 steps.

Each step sends what an agent sends: the whole history so far, grown by one 3.5 KB observation a step,
over one `http.client` connection (reopened only when the server closes it), so that the figure is the
server's and the wire's, not a client library's. The body is encoded before the clock starts. Reported:
the median round trip of the first and of the last 20 steps (their ratio: flat is 1x), and the memory the server still holds after the run (tracemalloc,
in a separate pass, as tracing slows everything; the client's bodies are freed after each step). With --against REV the
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
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

from devloop.models import scripted_server

OBSERVATION = ("line of a command's output, as an agent would see it\n" * 66)[:3500]


def old_module(rev: str) -> ModuleType:
    """scripted_server.py as of git revision `rev`, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{rev}:src/devloop/models/scripted_server.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "scripted_server_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("scripted_server_old", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_once(module: ModuleType, steps: int, traced: bool, **kwargs: Any) -> tuple[list[float], int]:
    """Round trips per step, and (when `traced`: tracemalloc slows everything) the bytes still held."""
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
        server.close()
    return times, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also measure the server of this git revision")
    args = ap.parse_args()
    sides: dict[str, tuple[ModuleType, dict[str, Any]]] = {
        "current, keep_bodies=False": (scripted_server, {"keep_bodies": False}),
        "current, keep_bodies=True": (scripted_server, {}),
    }
    if args.against:
        sides[f"at {args.against}"] = (old_module(args.against), {})
    results: dict[str, list[tuple[list[float], int]]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            module, kwargs = sides[name]
            results[name].append(run_once(module, args.steps, False, **kwargs))
    held = {name: run_once(module, args.steps, True, **kwargs)[1] for name, (module, kwargs) in sides.items()}
    print(f"{args.steps} growing requests (3.5 KB more a step), {args.rounds} alternating rounds")
    for name, runs in results.items():
        first = statistics.median(statistics.median(t[:20]) for t, _ in runs) * 1000
        last = statistics.median(statistics.median(t[-20:]) for t, _ in runs) * 1000
        print(
            f"  {name:<28} round trip first 20 {first:6.2f} ms, last 20 {last:6.2f} ms "
            f"({last / first:4.1f}x); held after the run {held[name] / 2**20:7.1f} MB"
        )


if __name__ == "__main__":
    main()
