"""bench/scaffold_overhead.py's floor sends, step by step, the very request bodies devloop sends."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "scaffold_overhead.py"


def test_floor_carries_devloops_request_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))  # the bench's own helpers (bench/scaffold/), as when run
    spec = importlib.util.spec_from_file_location("scaffold_overhead_bench", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    template = bench.template_repo(tmp_path / "template")
    cmds = bench.commands(4)
    bodies = bench.devloop_bodies(template, tmp_path, cmds)
    for side in ("floor", "devloop"):
        base = tmp_path / side
        shutil.copytree(template, base / "repo", symlinks=True)
        if side == "floor":
            bench.floor_once(base / "repo", base / "out", cmds, bodies)
        else:
            bench.devloop_once(base / "repo", base / "out", cmds)
    sizes = bench.SENT["floor"]
    assert sizes == bench.SENT["devloop"] and len(sizes) == len(cmds) + 1
    assert all(
        later > earlier + 2000 for earlier, later in zip(sizes, sizes[1:], strict=False)
    )  # 2-5 KB a step


def test_the_disk_probe_times_file_creation_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from diskprobe import describe, file_create_ms

    took = [file_create_ms(tmp_path, n=5) for _ in range(3)]
    assert all(0 < t < 1000 for t in took) and list(tmp_path.iterdir()) == []
    assert describe(took).startswith("temp dir (") and "3 probes" in describe(took)


def test_the_machines_busy_cpu_counts_a_childs_work_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))
    import os
    import subprocess
    import time

    from diskprobe import busy_cpu_s

    spin = "import os, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint(sum(os.times()[:2]))"
    before, t0 = busy_cpu_s(), time.perf_counter()
    child_cpu = float(
        subprocess.run([sys.executable, "-c", spin], capture_output=True, text=True, check=True).stdout
    )
    busy, wall = busy_cpu_s() - before, time.perf_counter() - t0
    # At least the child's own CPU (other work on the machine only adds), at most every core's whole span.
    assert child_cpu - 0.05 <= busy <= wall * (os.cpu_count() or 1) + 0.05, (child_cpu, busy, wall)
