"""Executor scaling: scheduler overhead per unit of the local pool and of Ray, and speed-up over one worker.

200 synthetic units (each sleeps --work seconds, standing in for an agent attempt) go through the same
submit / wait-first-completed loop as `run_protocol`, with `capacity` units in flight. Reported per
executor and worker count: wall time, overhead per unit ((wall - units * work / workers) / units), and the
speed-up over one worker of the same executor. A zero-work pass measures the pure per-unit cost.

    python bench/executor_scaling.py [--units 200] [--work 0.02] [--workers 1,2,4] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import FIRST_COMPLETED, wait

from devloop.eval.executors import Executor, LocalExecutor, RayExecutor


def synthetic_unit(seconds: float) -> float:
    """One unit of fake work; returns the seconds it slept."""
    time.sleep(seconds)
    return seconds


def drive(executor: Executor, units: int, work: float) -> float:
    """Run `units` jobs through the protocol engine's scheduling loop; returns the wall time."""
    started = time.perf_counter()
    queued, in_flight = units, set()
    while queued or in_flight:
        while queued and len(in_flight) < executor.capacity:
            in_flight.add(executor.submit(synthetic_unit, work))
            queued -= 1
        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            future.result()
    return time.perf_counter() - started


def measure(kind: str, workers: int, units: int, work: float) -> dict[str, float | int | str]:
    executor: Executor = LocalExecutor(workers) if kind == "local" else RayExecutor(workers)
    try:
        drive(executor, min(units, 2 * workers), 0.0)  # warm: workers started, function shipped
        wall = drive(executor, units, work)
        empty = drive(executor, units, 0.0)
    finally:
        executor.close()
    ideal = units * work / workers
    return {"executor": kind, "workers": workers, "wall_s": round(wall, 3),
            "overhead_ms_per_unit": round(1000 * (wall - ideal) / units, 3),
            "zero_work_ms_per_unit": round(1000 * empty / units, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--work", type=float, default=0.02, help="seconds of fake work per unit")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--no-ray", action="store_true", help="skip Ray even when it is installed")
    args = parser.parse_args()
    kinds = ["local"]
    if not args.no_ray:
        try:
            import ray  # noqa: F401

            kinds.append("ray")
        except ImportError:
            print("ray is not installed: measuring the local pool only (pip install 'devloop[ray]')")
    rows = []
    for kind in kinds:
        base = None
        for workers in [int(w) for w in args.workers.split(",")]:
            row = measure(kind, workers, args.units, args.work)
            base = base or float(row["wall_s"])
            row["speedup_vs_1"] = round(base / float(row["wall_s"]), 2)
            rows.append(row)
            print(json.dumps(row))
    print(f"\n{'executor':8} {'workers':>7} {'wall s':>8} {'overhead ms/unit':>17} {'zero-work ms/unit':>18} "
          f"{'speed-up':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['executor']:8} {r['workers']:>7} {r['wall_s']:>8} {r['overhead_ms_per_unit']:>17} "
              f"{r['zero_work_ms_per_unit']:>18} {r['speedup_vs_1']:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
