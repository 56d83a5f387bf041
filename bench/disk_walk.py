"""Cost of the disk quota's walk (runtime/diskquota.py) on a tree of N files, and what it costs a running
command: how often a routine walk happens (every max(tick, walk / budget) seconds) and the share of a core.

    python bench/disk_walk.py [--files 10000] [--per-dir 100] [--rounds 10]

Target: routine walks take < 5% of one core, whatever the tree's size.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from devloop.runtime.diskquota import ROUTINE_BUDGET, measure

TICK_S = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="files in the tree (default 10000)")
    parser.add_argument("--per-dir", type=int, default=100, help="files per directory (default 100)")
    parser.add_argument("--rounds", type=int, default=10, help="walks measured (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devloop-bench-walk-") as tmp:
        root = Path(tmp)
        for i in range(args.files):
            folder = root / f"d{i // args.per_dir:04d}"
            folder.mkdir(exist_ok=True)
            (folder / f"f{i}.txt").write_bytes(b"x" * (i % 5000))
        measure([root])  # warm the dentry cache, as a tree in use is
        times = [measure([root]).seconds for _ in range(args.rounds)]
    walk = statistics.median(times)
    interval = max(TICK_S, walk / ROUTINE_BUDGET)
    print(
        f"walk of {args.files:,} files in {args.files // args.per_dir:,} dirs, median of {args.rounds}: "
        f"{walk * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
    )
    print(
        f"routine walk every {interval:.2f} s while a command runs: {walk / interval:.1%} of a core "
        f"(target < {ROUTINE_BUDGET:.0%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
