"""The jobs an executor runs: one graded agent attempt, or one best-of selection.

Both are module-level functions of picklable arguments, so a process pool or Ray can ship them; both
write their result atomically into the run directory before returning it, and never raise.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devloop.config import RunSettings
from devloop.harness.envs import EnvError
from devloop.harness.grading import NO_ENVIRONMENT, grade
from devloop.harness.runner import RunnerSettings, env_manager, prepare_agent_tree
from devloop.harness.verdict import Category, Verdict
from devloop.protocols import best_of
from devloop.protocols.units import Selection, UnitRecord, UnitStore, settings_key
from devloop.runtime.limits import Limits
from devloop.solver import AgentSolver
from devloop.tasks.model import Task


@dataclass(frozen=True)
class HarnessSettings:
    """Where the run lives and how grading runs: the same for every unit of a run."""

    store_root: Path
    run_id: str
    cache_dir: Path | None = None
    mirrors: Path | None = None
    test_timeout: float = 1800.0
    keep_workdirs: bool = False
    model_name: str = "agent"
    sandbox: str = "auto"
    """Where install and test commands run: "bwrap", "none" (unconfined), or "auto"."""
    limits: Limits | None = None
    """The sandbox's per-command limits (the agent's)."""

    def runner_settings(self) -> RunnerSettings:
        return RunnerSettings(self.store_root, self.run_id, self.cache_dir, self.mirrors, self.test_timeout,
                              self.keep_workdirs, self.model_name, self.sandbox, self.limits)  # fmt: skip

    def store(self) -> UnitStore:
        return UnitStore(self.store_root, self.run_id)


@dataclass(frozen=True)
class AttemptJob:
    """One unit: `settings` already carry the unit's temperature."""

    task: Task
    index: int
    settings: RunSettings
    harness: HarnessSettings


@dataclass(frozen=True)
class SelectJob:
    """Best-of's choice among a task's finished samples (index -> patch)."""

    task: Task
    patches: dict[int, str]
    harness: HarnessSettings


def _agent_result(out_dir: Path) -> tuple[str | None, int]:
    try:
        data = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
        return data.get("exit_status"), int(data.get("steps") or 0)
    except (OSError, ValueError, TypeError):
        return None, 0


def run_attempt(job: AttemptJob) -> UnitRecord:
    """Run the agent once on the task, grade its patch, and write the unit's record. Never raises."""
    task, h = job.task, job.harness
    store = h.store()
    unit_dir = store.unit_dir(task.instance_id, job.index)
    # A killed attempt leaves a partial directory (the trajectory appends): start it afresh.
    shutil.rmtree(unit_dir, ignore_errors=True)
    unit_dir.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"devloop-{task.instance_id[:40]}-{job.index}-"))
    started = time.monotonic()
    patch, exit_status, steps = "", None, 0
    try:
        if task.environment is None:
            verdict = Verdict(
                instance_id=task.instance_id, category=Category.ENV_ERROR, message=NO_ENVIRONMENT
            )
        else:
            try:
                tree, env = prepare_agent_tree(task, h.runner_settings(), workdir / "agent", unit_dir)
            except EnvError as exc:
                verdict = Verdict(
                    instance_id=task.instance_id, category=Category.ENV_ERROR, message=exc.message
                )
            else:
                agent_started = time.monotonic()
                patch = (
                    AgentSolver(job.settings, hide=(h.store_root, h.mirrors))(
                        task, tree, env, unit_dir / "agent"
                    )
                    or ""
                )
                agent_s = round(time.monotonic() - agent_started, 3)
                exit_status, steps = _agent_result(unit_dir / "agent")
                verdict = grade(task, patch, env_manager=env_manager(h.cache_dir), mirrors=h.mirrors,
                                workdir=workdir / "grade", test_timeout=h.test_timeout, log_dir=unit_dir,
                                sandbox=h.sandbox, limits=h.limits)  # fmt: skip
                verdict.timings["agent"] = agent_s
    except Exception as exc:  # the attempt's outcome, not the run's end
        verdict = Verdict(instance_id=task.instance_id, category=Category.ERROR,
                          message=f"{type(exc).__name__}: {exc}".splitlines()[0])  # fmt: skip
    finally:
        if not h.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
    record = UnitRecord(
        instance_id=task.instance_id, index=job.index, temperature=job.settings.temperature,
        max_iterations=job.settings.max_iterations, settings_key=settings_key(job.settings.model_dump(mode="json")),
        exit_status=exit_status, steps=steps, patch=patch, verdict=verdict,
        duration_s=round(time.monotonic() - started, 3),
    )  # fmt: skip
    store.write_unit(record)
    return record


def run_selection(job: SelectJob) -> Selection:
    """Choose among the task's candidates by visible tests and votes; write selection.json. Never raises."""
    h = job.harness
    store = h.store()
    try:
        selection = best_of.select(job.task, job.patches, manager=env_manager(h.cache_dir), mirrors=h.mirrors,
                                   test_timeout=h.test_timeout, log_dir=store.instance_dir(job.task.instance_id),
                                   keep_workdirs=h.keep_workdirs, sandbox=h.sandbox, limits=h.limits)  # fmt: skip
    except Exception as exc:  # no visible evidence: fall back to the vote alone
        rows = [{"index": i, "applied": 1, "regressions": 0, "own_tests_failed": 0,
                 "votes": sum(best_of.normalise_patch(q) == best_of.normalise_patch(p) for q in job.patches.values()),
                 "fingerprint": best_of.normalise_patch(p)} for i, p in job.patches.items() if p.strip()]  # fmt: skip
        chosen = best_of.choose(rows) if rows else min(job.patches)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        selection = Selection(instance_id=job.task.instance_id, chosen=chosen, candidates=rows,
                              rule=f"vote only (visible tests could not run: {reason})")  # fmt: skip
    store.write_selection(selection)
    return selection
