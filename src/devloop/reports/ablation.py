"""Iteration ablation from one run: what the run would have scored with a smaller `max_iterations`.

A trajectory records the patch after every step, so the result at limit L is the patch after step L, or
the final patch when the agent stopped at or before step L. That patch is graded by the harness (cached
under `<run>/ablation/L<L>/`). It is an estimate: an agent told of a smaller limit may act differently;
`devloop sweep --max-iterations` is the exact re-run. L beyond a unit's own limit, for a unit cut by that
limit, cannot be estimated and makes the figure n/a.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from devloop.eval.envs import EnvironmentManager
from devloop.eval.grading import grade
from devloop.eval.records import UnitRecord
from devloop.eval.rundata import RunData
from devloop.eval.store import atomic_write
from devloop.eval.verdict import Category, Verdict
from devloop.stats.summary import pass_at_k_estimate, resolve_rate


def patch_at_step(trajectory: Path, limit: int) -> str | None:
    """The patch after step `limit` in a trajectory; None when the trajectory has no such step."""
    try:
        with trajectory.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    return None
                if event.get("type") == "step" and event.get("step") == limit:
                    return str(event.get("patch") or "")
    except OSError:
        return None
    return None


def _graded_at(
    run: RunData,
    unit: UnitRecord,
    limit: int,
    tasks: dict[str, Any],
    manager: EnvironmentManager,
    mirrors: Path | None,
    test_timeout: float,
) -> bool | None:
    """Whether the unit resolves at `limit` (None: cannot be estimated)."""
    if unit.steps <= limit:
        if unit.exit_status == "max_iterations" and limit > unit.max_iterations:
            return None  # cut by its own smaller limit: what it would do later is unknown
        return unit.resolved
    cache = run.root / "ablation" / f"L{limit}" / unit.instance_id / str(unit.index) / "verdict.json"
    if cache.is_file():
        return Verdict.model_validate_json(cache.read_text("utf-8")).category == Category.RESOLVED
    patch = patch_at_step(run.trajectory(unit.instance_id, unit.index), limit)
    task = tasks.get(unit.instance_id)
    if patch is None or task is None:
        return None
    with tempfile.TemporaryDirectory(prefix="devloop-ablation-") as work:
        verdict = grade(
            task,
            patch,
            env_manager=manager,
            mirrors=mirrors,
            workdir=Path(work),
            test_timeout=test_timeout,
            log_dir=cache.parent,
        )
    atomic_write(cache, verdict.model_dump_json(indent=1) + "\n")
    return verdict.category == Category.RESOLVED


def ablation(
    run: RunData,
    limits: list[int],
    *,
    cache_dir: Path | None = None,
    mirrors: Path | None = None,
    test_timeout: float = 1800.0,
    conf: float = 0.95,
) -> list[dict[str, Any]]:
    """The estimated resolve rate (pass@1 over samples) at each limit, with its CI; None where unknown.

    Uses each task's first attempt for single and iterative runs, every sample for samples and best-of.
    """
    tasks = {t.instance_id: t for t in run.tasks()}
    manager = EnvironmentManager(cache_dir)
    every_sample = run.config.name in ("samples", "best-of")
    rows = []
    for limit in limits:
        counts: dict[str, tuple[int, int]] = {}
        unknown = 0
        for iid in run.task_ids:
            chosen = [u for i, u in run.units.get(iid, {}).items() if every_sample or i == 0]
            outcomes = [_graded_at(run, u, limit, tasks, manager, mirrors, test_timeout) for u in chosen]
            unknown += sum(o is None for o in outcomes)
            counts[iid] = (len(outcomes), sum(bool(o) for o in outcomes))
        estimate = None
        if not unknown and counts and all(n for n, _ in counts.values()):  # every task has its outcome
            if every_sample:
                est = pass_at_k_estimate(counts, 1, conf)
                estimate = est.to_dict() if est else None
            else:
                estimate = resolve_rate(sum(c for _, c in counts.values()), len(counts), conf).to_dict()
        rows.append(
            {
                "max_iterations": limit,
                "estimate": estimate,
                "unknown_units": unknown,
                "label": "estimate from trajectories",
            }
        )
    return rows
