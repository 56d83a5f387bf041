"""Removing a tree: devloop's remove_tree (each depth's directories in parallel threads) against
shutil.rmtree (one directory at a time), on the same trees, alternating.

Trees: a workspace as `Workspace.create` makes one of the agent-loop bench's repository (its clone,
its .git and devloop's private git dir: ~30 directories), and a generated tree of 300 directories of
3 files each. The floor is shutil.rmtree: the ratio below 1 is the waits on the disk that overlap.

    python bench/tree_removal.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scaffold.work import template_repo  # bench/ is on sys.path when this file is run

from devloop.safefs.tree import remove_tree
from devloop.workspace import Workspace


def workspace_tree(template: Path, _tmp: Path) -> Path:
    return Workspace.create(template).root.parent


def generated_tree(_template: Path, tmp: Path) -> Path:
    root = Path(tempfile.mkdtemp(dir=tmp))
    for i in range(30):
        for j in range(10):
            d = root / f"pkg{i}" / f"mod{j}"
            d.mkdir(parents=True)
            for k in range(3):
                (d / f"f{k}.py").write_text("x = 1\n")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    removers: dict[str, Callable[[Path], None]] = {
        "shutil.rmtree": lambda p: shutil.rmtree(p),
        "remove_tree": remove_tree,
    }
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        template = template_repo(tmp / "template")
        for label, make in (("workspace", workspace_tree), ("300 directories", generated_tree)):
            times: dict[str, list[float]] = {name: [] for name in removers}
            for r in range(args.rounds):
                for name in list(removers)[r % 2 :] + list(removers)[: r % 2]:
                    root = make(template, tmp)
                    t0 = time.perf_counter()
                    removers[name](root)
                    times[name].append(time.perf_counter() - t0)
                    assert not root.exists()
            floor = times["shutil.rmtree"]
            ratios = [t / f for t, f in zip(times["remove_tree"], floor, strict=True)]
            print(
                f"{label}: shutil.rmtree {statistics.median(floor) * 1e3:.1f} ms, remove_tree "
                f"{statistics.median(times['remove_tree']) * 1e3:.1f} ms: {statistics.median(ratios):.2f}x "
                f"(spread {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} rounds)"
            )


if __name__ == "__main__":
    main()
