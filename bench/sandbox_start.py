"""Sandbox start-up cost: time to a ready shell (first command's output received) for a plain local shell
and for the bubblewrap sandbox, in one run. Rounds alternate between the two so machine noise hits both
alike; medians, the ratio and the sandbox's added cost are printed. Closing is timed separately.

    python bench/sandbox_start.py [--rounds 30]

Target: a ready sandboxed shell in < 0.2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.local import LocalRuntime

TARGET_S = 0.2


def time_to_ready(factory, root: Path) -> tuple[float, float]:
    """Seconds from constructing the runtime to the first command's output, and seconds to close it."""
    started = time.perf_counter()
    rt = factory(root)
    result = rt.run("echo ready", 10)
    ready = time.perf_counter() - started
    if result.output != "ready\n":
        raise SystemExit(f"unexpected first output from {type(rt).__name__}: {result.output!r}")
    started = time.perf_counter()
    rt.close()
    return ready, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="measurements per runtime (default 30)")
    args = parser.parse_args()
    problem = probe_bwrap()
    if problem is not None:
        print(f"bubblewrap is not usable here: {problem}", file=sys.stderr)
        return 2
    runtimes = {"local": LocalRuntime, "bwrap": BwrapRuntime}
    ready: dict[str, list[float]] = {name: [] for name in runtimes}
    close: dict[str, list[float]] = {name: [] for name in runtimes}
    with tempfile.TemporaryDirectory(prefix="devloop-bench-") as tmp:
        root = Path(tmp)
        for factory in runtimes.values():  # warm-up: imports, page cache, the bwrap probe
            time_to_ready(factory, root)
        for _ in range(args.rounds):
            for name, factory in runtimes.items():
                r, c = time_to_ready(factory, root)
                ready[name].append(r)
                close[name].append(c)
    med = {name: statistics.median(values) for name, values in ready.items()}
    print(f"time to a ready shell, median of {args.rounds} alternating rounds:")
    for name in runtimes:
        values = sorted(ready[name])
        p90 = values[int(0.9 * (len(values) - 1))]
        print(
            f"  {name:6s} {med[name] * 1000:7.1f} ms  (p90 {p90 * 1000:.1f} ms, "
            f"close {statistics.median(close[name]) * 1000:.1f} ms)"
        )
    print(
        f"  bwrap / local = {med['bwrap'] / med['local']:.2f}x; sandbox adds {(med['bwrap'] - med['local']) * 1000:.1f} ms"
    )
    verdict = "meets" if med["bwrap"] < TARGET_S else "MISSES"
    print(f"  target < {TARGET_S * 1000:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
