"""Build time of `devloop dataset build` per 1,000 trajectories, synthesised from a real one.

A real oracle eval of one builtin task is run first (or --run names an eval run directory); its graded
attempt is copied N times under other instance ids spread over --repos repositories, one in three
graded unresolved with another patch (so filters, dedup, pairs and KTO rows all have work). The same
synthetic run is then read alone (collect) and built in several formats, side by side in this run:

    python bench/dataset_build.py [--trajectories 1000] [--repos 50] [--run DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devloop.dataset.build import build
from devloop.dataset.collect import sources

TASK = "devloop__confetti-1"


def oracle_run(tmp: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", "eval", "--suite", "builtin", "--model", "oracle", "--instances", TASK,
         "--output", str(tmp), "--run-id", "oracle", "--cache-dir", str(tmp / "cache")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"oracle eval failed:\n{proc.stdout}{proc.stderr}")
    return tmp / "oracle"


def synthesise(real: Path, out: Path, n: int, repos: int) -> Path:
    (src,) = [p for p in (real / "instances").iterdir() if (p / "attempts" / "0" / "unit.json").is_file()][:1]
    task = json.loads((real / "tasks.jsonl").read_text().splitlines()[0])
    unit = json.loads((src / "attempts/0/unit.json").read_text())
    traj = (src / "attempts/0/agent/trajectory.jsonl").read_bytes()
    result = (src / "attempts/0/agent/result.json").read_bytes()
    tasks = []
    for i in range(n):
        iid = f"owner__repo{i % repos}-{i}"
        att = out / "instances" / iid / "attempts" / "0"
        (att / "agent").mkdir(parents=True)
        (att / "agent" / "trajectory.jsonl").write_bytes(traj)
        (att / "agent" / "result.json").write_bytes(result)
        failed = i % 3 == 2
        verdict = {**unit["verdict"], "category": "unresolved" if failed else "resolved"}
        patch = unit["patch"] + (f"+change {i}\n" if failed else "")
        (att / "unit.json").write_text(
            json.dumps({**unit, "instance_id": iid, "patch": patch, "verdict": verdict})
        )
        tasks.append(json.dumps({**task, "instance_id": iid, "repo": f"owner/repo{i % repos}",
                                 "problem_statement": f"{task['problem_statement']}\n(variant {i})"}))  # fmt: skip
    (out / "tasks.jsonl").write_text("\n".join(tasks) + "\n")
    return out


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trajectories", type=int, default=1000, help="synthetic trajectories (default 1000)"
    )
    parser.add_argument("--repos", type=int, default=50, help="repositories they spread over (default 50)")
    parser.add_argument(
        "--run", type=Path, help="an eval run directory to copy from (default: run the oracle)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devloop-bench-dataset-") as tmp_:
        tmp = Path(tmp_)
        real = args.run or oracle_run(tmp)
        run = synthesise(real, tmp / "synthetic", args.trajectories, args.repos)
        steps = sum(1 for line in (next((run / "instances").iterdir()) / "attempts/0/agent/trajectory.jsonl")
                    .read_text().splitlines() if '"type": "step"' in line)  # fmt: skip
        n = args.trajectories
        per_k = 1000 / n
        build([real], tmp / "warm")  # imports (datasets, matplotlib) and caches, outside the timings
        read = timed(lambda: sources(run))
        cases = {
            "openai, native": lambda: build([run], tmp / "a", renders=("native",)),
            "openai, native+xml": lambda: build([run], tmp / "b", renders=("native", "xml")),
            "mistral (validated), native": lambda: build(
                [run], tmp / "c", renders=("native",), fmt="mistral"
            ),
            "sharegpt, native": lambda: build([run], tmp / "d", renders=("native",), fmt="sharegpt"),
        }
        print(f"{n:,} trajectories of {steps} steps each, over {args.repos} repositories")
        print(f"{'case':<30} {'s per 1,000':>12} {'x reading':>10}")
        print(f"{'read only (collect)':<30} {read * per_k:>12.2f} {1.0:>10.1f}")
        for name, fn in cases.items():
            seconds = timed(fn)
            print(f"{name:<30} {seconds * per_k:>12.2f} {seconds / read:>10.1f}")
        shutil.rmtree(tmp / "synthetic")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
