"""Eval overhead: per-instance wall time of grading the builtin suite against the tests' own time, and
the throughput of 2 workers against 1.

Each round runs `devloop eval --suite builtin --predictions gold` (the default sandbox) with 1 worker
and with 2, in alternating order, on a warm environment cache (built by a first, unmeasured run). From
each 1-worker run: wall time per instance / the tests' own time per instance (the `tests` timing of
every verdict: the test command from start to exit), and what the rest is made of per instance: the
grading's own time beyond the tests (each verdict's `total` minus its `tests`) and the run's time outside
every grading (start-up, the gaps between instances, exit). Across the pair: 1-worker wall / 2-worker wall.
THE FLOOR, in the same rounds (before devloop's pair in even rounds, after it in odd ones): the same test
commands run bare (no devloop, no sandbox; bench/eval_bare.py) on fresh copies of the same trees, one at
a time and two at a time, longest first: what this machine gives the tests alone, against which the
1-worker wall and the 2-worker speed-up are set.
THE CPU, beside the walls: the machine's busy CPU seconds (/proc/stat) over each of those runs and passes,
per instance. Per-process accounting would miss most of devloop's: a sandbox's processes are reaped in its
own PID namespace. What devloop spends beyond the floor runs, with 1 worker, mostly on the core the tests
leave idle (the next tree is staged there); with 2 workers it competes with the tests, which is what
separates the 2-worker speed-up from the floor's.
Also printed, for scale: what a hard-link copy plus removal of the cached venv costs (what a task with
no install step no longer pays per instance), and how long creating a file in the temp dir took between
rounds (bench/diskprobe.py: the grading's work dirs are made there). Each run ends with a sync, untimed.

    python bench/eval_overhead.py [--rounds 3] [--instances ID,ID] [--against REV] [--no-prefetch-too]

--against REV adds, in every round, the 1-worker run of that git revision's `src/` (exported to a
temporary directory, first on PYTHONPATH), so the two trees' overheads are measured side by side.
--no-prefetch-too adds, in every round, the 1- and 2-worker runs with `--no-prefetch` (each grading
makes its tree in its turn): what the prefetch saves, and whether the tests' own time grows while the
next tree is made beside them.

Targets: <= 1.15x the tests' own time with 1 worker; >= 1.8x the throughput with 2 workers (the floor's
own speed-up, two at a time vs one, is printed beside it: on 2 cores it moves from run to run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import eval_bare as bare  # bench/ is on sys.path when this file is run
from diskprobe import busy_cpu_s, describe, file_create_ms
from startup import export_src


def run_eval(
    out: Path,
    cache: Path,
    workers: int,
    instances: str | None,
    src: Path | None = None,
    *,
    prefetch: bool = True,
    keep: bool = False,
    cpu: list[float] | None = None,
) -> tuple[float, list[float], list[float]]:
    """(wall seconds, each instance's test seconds, each instance's grading seconds) of one graded run;
    its run directory is removed unless `keep`. `cpu` gets the machine's busy CPU seconds over the run."""
    argv = [sys.executable, "-m", "devloop", "eval", "--suite", "builtin", "--predictions", "gold"]
    argv += ["--workers", str(workers), "--output", str(out), "--run-id", "r", "--cache-dir", str(cache)]
    argv += [] if prefetch else ["--no-prefetch"]
    if instances:
        argv += ["--instances", instances]
    env = None
    if src is not None:
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    busy0, t0 = busy_cpu_s(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(busy_cpu_s() - busy0)
    if proc.returncode != 0:
        raise SystemExit(f"devloop eval exited {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}")
    verdicts = [json.loads(p.read_text()) for p in sorted((out / "r" / "instances").glob("*/verdict.json"))]
    tests = [float(v.get("timings", {}).get("tests", 0.0)) for v in verdicts]
    totals = [float(v.get("timings", {}).get("total", 0.0)) for v in verdicts]
    resolved = sum(1 for v in verdicts if v.get("category") == "resolved")
    if resolved != len(verdicts) or not verdicts:
        raise SystemExit(f"the gold patches did not all resolve ({resolved} of {len(verdicts)})")
    if not keep:
        shutil.rmtree(out)
    os.sync()  # untimed: this run's writes go back to the disk before the next run starts, not during it
    return wall, tests, totals


def copy_cost(cache: Path, tmp: Path, rounds: int = 5) -> float:
    """Seconds for `cp -al` of a cached venv plus its removal: the per-instance copy a task without an
    install step no longer makes."""
    venv = next(p for p in (cache / "venvs").iterdir() if p.is_dir() and not p.name.startswith("."))
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(["cp", "-al", str(venv), str(tmp / f"copy{i}")], check=True)
        shutil.rmtree(tmp / f"copy{i}")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instances", default=None, help="only these instance ids (comma-separated)")
    ap.add_argument("--against", metavar="REV", help="also the 1-worker run of this git revision")
    ap.add_argument("--no-prefetch-too", action="store_true", help="also the runs with --no-prefetch")
    args = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling every module per run is not the harness
    with tempfile.TemporaryDirectory(prefix="devloop-bench-eval-") as tmp_s:
        tmp = Path(tmp_s)
        cache = tmp / "cache"
        run_eval(tmp / "warm", cache, 1, args.instances, keep=True)  # builds the environments once
        found = bare.cases(tmp / "warm" / "r", tmp / "trees")  # the floor's trees, from what was graded
        env = bare.venv_env(cache)
        shutil.rmtree(tmp / "warm")
        os.sync()
        bare.bare_pass(found, tmp / "trees", tmp / "bare", 1, env)  # unmeasured, as devloop's first run is
        floor: dict[str, list[float]] = {"lane1": [], "speedup": [], "wall1": [], "kept": []}
        # Busy CPU seconds of the whole machine per run: devloop's workers 1 and 2, the floor's lanes 1 and 2.
        cpu: dict[str, list[float]] = {"w1": [], "w2": [], "lane1": [], "lane2": []}
        old = export_src(args.against, tmp) if args.against else None
        per_instance: list[float] = []
        old_per_instance: list[float] = []
        vs_old: list[float] = []
        speedup: list[float] = []
        probes: list[float] = []
        in_grading: list[float] = []  # per instance: its grading's time beyond its tests
        outside: list[float] = []  # per instance: the run's time outside every grading (start-up, exit)
        tests_on: list[float] = []  # tests' own time per instance, 1 worker
        off: dict[str, list[float]] = {"ratio": [], "tests": [], "wall1": [], "wall2": [], "speedup": []}
        for r in range(args.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            walls: dict[int, float] = {}
            lanes: dict[int, float] = {}
            bare_first = r % 2 == 0
            for n_lanes in order if bare_first else ():
                lanes[n_lanes] = bare.bare_pass(found, tmp / "trees", tmp / "bare", n_lanes, env,
                                                cpu[f"lane{n_lanes}"])  # fmt: skip
            for workers in order:
                wall, tests, totals = run_eval(tmp / f"run{r}-{workers}", cache, workers, args.instances,
                                               cpu=cpu[f"w{workers}"])  # fmt: skip
                walls[workers] = wall
                if workers == 1:
                    per_instance.append((wall / len(tests)) / (sum(tests) / len(tests)))
                    n, test_s = len(tests), sum(tests)
                    in_grading.append((sum(totals) - test_s) / n)
                    outside.append((wall - sum(totals)) / n)
                    tests_on.append(test_s / n)
            for n_lanes in () if bare_first else order:
                lanes[n_lanes] = bare.bare_pass(found, tmp / "trees", tmp / "bare", n_lanes, env,
                                                cpu[f"lane{n_lanes}"])  # fmt: skip
            speedup.append(walls[1] / walls[2])
            floor["lane1"].append(lanes[1])
            floor["wall1"].append(walls[1] / lanes[1])
            floor["speedup"].append(lanes[1] / lanes[2])
            floor["kept"].append(speedup[-1] / floor["speedup"][-1])
            if args.no_prefetch_too:
                off_walls: dict[int, float] = {}
                for workers in order:
                    wall, tests, _ = run_eval(tmp / f"run{r}-off{workers}", cache, workers, args.instances,
                                              prefetch=False)  # fmt: skip
                    off_walls[workers] = wall
                    if workers == 1:
                        off["ratio"].append((wall / len(tests)) / (sum(tests) / len(tests)))
                        off["tests"].append(sum(tests) / len(tests) / tests_on[-1])
                off["wall1"].append(walls[1] / off_walls[1])
                off["wall2"].append(walls[2] / off_walls[2])
                off["speedup"].append(off_walls[1] / off_walls[2])
            if old is not None:
                wall, tests, _ = run_eval(tmp / f"run{r}-old", cache, 1, args.instances, src=old)
                old_per_instance.append((wall / len(tests)) / (sum(tests) / len(tests)))
                vs_old.append(per_instance[-1] / old_per_instance[-1])
            probes.append(file_create_ms())

        def med(xs: list[float]) -> str:
            return f"{statistics.median(xs):.2f}x (spread {min(xs):.2f}-{max(xs):.2f})"

        print(
            f"builtin suite, gold patches, default sandbox; {n} instances, tests' own time {test_s / n:.3f} s each"
        )
        print(
            f"  1 worker: wall per instance / tests' own time {statistics.median(per_instance):.2f}x "
            f"(spread {min(per_instance):.2f}-{max(per_instance):.2f}; goal <= 1.15x)"
        )
        print(
            f"    beyond the tests, per instance: {statistics.median(in_grading) * 1e3:.0f} ms in its grading "
            f"(sandbox, tree, patches), {statistics.median(outside) * 1e3:.0f} ms of the run's start-up and exit "
            f"spread over the {n} instances"
        )
        print(
            f"  2 workers: throughput vs 1 worker {statistics.median(speedup):.2f}x "
            f"(spread {min(speedup):.2f}-{max(speedup):.2f}; goal >= 1.8x)"
        )
        print(
            f"  floor, the same tests bare (no devloop, no sandbox, fresh trees): one at a time "
            f"{statistics.median(floor['lane1']):.2f} s; 1 worker's wall / that {med(floor['wall1'])}; "
            f"two at a time vs one {med(floor['speedup'])}; 2 workers' speed-up / the floor's {med(floor['kept'])}"
        )
        per = {k: statistics.median(v) / n * 1e3 for k, v in cpu.items()}
        print(
            f"  CPU of the whole machine per instance (/proc/stat, busy): devloop {per['w1']:.0f} ms with 1 worker,"
            f" {per['w2']:.0f} ms with 2; the floor {per['lane1']:.0f} ms one at a time, {per['lane2']:.0f} ms two at"
            f" a time; devloop's beyond the floor's (its processes, sandboxes, trees, git): {per['w1'] - per['lane1']:.0f}"
            f" ms with 1 worker (mostly on the core the tests leave idle), {per['w2'] - per['lane2']:.0f} ms with 2"
            " (where it competes with the tests)"
        )
        if old_per_instance:
            print(
                f"  1 worker at {args.against}: {statistics.median(old_per_instance):.2f}x the tests' own time; "
                f"this tree / {args.against}: {statistics.median(vs_old):.2f}x "
                f"(spread {min(vs_old):.2f}-{max(vs_old):.2f})"
            )
        if off["ratio"]:
            print(f"  --no-prefetch, 1 worker: {med(off['ratio'])} the tests' own time; 2 workers vs 1: "
                  f"{med(off['speedup'])}")  # fmt: skip
            print(f"  prefetch / --no-prefetch, wall: 1 worker {med(off['wall1'])}, 2 workers {med(off['wall2'])};"
                  f" tests' own time (no prefetch / prefetch) {med(off['tests'])}")  # fmt: skip
        print(f"  {describe(probes)}")
        spared = copy_cost(cache, tmp)
        print(
            f"  a cached venv's hard-link copy and removal, no longer made per instance: {spared * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
