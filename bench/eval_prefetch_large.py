"""Prefetch on a large tree: `devloop eval` with and without `--no-prefetch` when each instance's tree is
as large as a SWE-bench repository's.

A generated git repository of `--files` Python files (default 6,000, about django's count) in 60
packages; `--instances` tasks at its one commit, each graded with a one-line gold patch and a test
command that takes `--test-seconds` (a `sleep`: the tests' own time without their CPU, so that only the
tree's making is compared). One worker, the default sandbox, a warm environment cache (the builtin
suite's environment, built by a first unmeasured run). Each round runs both, in alternating order, and
prints the wall time of each, the ratio, and what the extraction took per instance (the `extract`
timing: for a prefetched grading, the staging's).

    python bench/eval_prefetch_large.py [--rounds 2] [--files 6000] [--instances 4] [--test-seconds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def make_tasks(root: Path, files: int, instances: int, test_seconds: float) -> Path:
    repo = root / "repo"
    rng = random.Random(1)
    for i in range(files):
        sub = repo / f"pkg{i % 60}" / f"sub{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"m{i}.py").write_text(f"x = {i}\n" * rng.randint(5, 200))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    with (repo / "pkg0" / "sub0" / "m0.py").open("a") as f:
        f.write("x = -1\n")
    gold = git(repo, "diff")
    git(repo, "checkout", "-q", ".")
    env = {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "pip": ["pytest==8.3.3"],
           "install": "", "test_cmd": f"sh -c 'sleep {test_seconds:g}; echo PASSED t::ok'", "log_parser": "pytest",
           "env": {}}  # fmt: skip
    tasks = [
        {"instance_id": f"large__tree-{i}", "repo": "large/tree", "base_commit": base, "problem_statement": "x",
         "patch": gold, "test_patch": "", "FAIL_TO_PASS": ["t::ok"], "PASS_TO_PASS": [], "repo_path": str(repo),
         "environment": env}
        for i in range(instances)
    ]  # fmt: skip
    path = root / "tasks.json"
    path.write_text(json.dumps(tasks))
    return path


def run_eval(tasks: Path, out: Path, cache: Path, prefetch: bool) -> tuple[float, list[float]]:
    """(wall seconds, each instance's extract seconds) of one 1-worker run."""
    argv = [sys.executable, "-m", "devloop", "eval", "--tasks", str(tasks), "--predictions", "gold",
            "--workers", "1", "--output", str(out), "--run-id", "r", "--cache-dir", str(cache)]  # fmt: skip
    argv += [] if prefetch else ["--no-prefetch"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    verdicts = [json.loads(p.read_text()) for p in sorted((out / "r" / "instances").glob("*/verdict.json"))]
    if proc.returncode != 0 or not verdicts or any(v["category"] != "resolved" for v in verdicts):
        raise SystemExit(
            f"devloop eval did not resolve every instance: {(proc.stderr or proc.stdout)[-500:]}"
        )
    shutil.rmtree(out)
    os.sync()  # untimed: this run's writes go back to the disk before the next run starts
    return wall, [float(v["timings"].get("extract", 0.0)) for v in verdicts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--instances", type=int, default=4)
    ap.add_argument("--test-seconds", type=float, default=6.0)
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="devloop-bench-large-") as tmp_s:
        tmp = Path(tmp_s)
        tasks = make_tasks(tmp, args.files, args.instances, args.test_seconds)
        cache = tmp / "cache"
        run_eval(tasks, tmp / "warm", cache, True)  # builds the environment once
        walls: dict[bool, list[float]] = {True: [], False: []}
        extract: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds):
            for prefetch in (True, False) if r % 2 == 0 else (False, True):
                wall, ext = run_eval(tasks, tmp / f"run{r}-{prefetch}", cache, prefetch)
                walls[prefetch].append(wall)
                extract[prefetch] += ext
        ratios = [a / b for a, b in zip(walls[True], walls[False], strict=True)]
        print(
            f"{args.instances} instances of a {args.files}-file tree, tests {args.test_seconds:g} s each, 1 worker"
        )
        for prefetch in (True, False):
            name = "prefetch     " if prefetch else "--no-prefetch"
            print(f"  {name} wall {statistics.median(walls[prefetch]):6.1f} s "
                  f"(extraction {statistics.median(extract[prefetch]):.2f} s per instance)")  # fmt: skip
        print(f"  prefetch / --no-prefetch, wall: {statistics.median(ratios):.2f}x "
              f"(spread {min(ratios):.2f}-{max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
