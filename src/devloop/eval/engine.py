"""`run_protocol`: the one scheduler. Runs a protocol's units on an executor, resumably, and writes the
run's report; every protocol, every executor, the agent or given predictions.

The scheduler keeps `executor.capacity` jobs in flight. After each finished unit it asks the protocol
what that task needs next, so the iterative protocol's attempt 2 starts as soon as that task's attempt 1
is graded, with no barrier between attempts. When a task is complete its chosen unit becomes the
instance's verdict.json and prediction.json at once, and report.json gets the protocol's sections as
extra keys. The engine prints nothing: progress and warnings go to the callbacks it is given.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devloop.config import RunSettings
from devloop.eval import durations
from devloop.eval.attempt import AttemptJob, HarnessSettings, SelectJob, run_attempt, run_selection
from devloop.eval.executors import Executor, LocalExecutor
from devloop.eval.grading import DEFAULT_TEST_TIMEOUT
from devloop.eval.protocols import ProtocolConfig
from devloop.eval.records import TASKS, Selection, UnitRecord
from devloop.eval.resume import ProtocolError, check_resumable
from devloop.eval.sections import protocol_section
from devloop.eval.store import Report, RunStore, atomic_write
from devloop.eval.taskbox import grading_confinement
from devloop.eval.verdict import Category
from devloop.repoenv.model import cache_root
from devloop.runtime.later import wait_removed
from devloop.runtime.limits import Limits
from devloop.swebench.grading import Rules
from devloop.tasks.model import Prediction, Task

__all__ = ["Progress", "ProtocolError", "ProtocolResult", "run_protocol", "unit_settings", "write_tasks"]


@dataclass(frozen=True)
class Progress:
    """Where a run stands: `done` of `total` instances have a verdict on disk, `counts` by category."""

    done: int
    total: int
    counts: Mapping[str, int]


@dataclass
class ProtocolResult:
    """The standard report, the protocol's sections (also in report.json), and units left undone."""

    report: Report
    sections: dict[str, Any]
    lost: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def unit_settings(settings: RunSettings, config: ProtocolConfig, index: int) -> RunSettings:
    """The agent settings of unit `index`: the run's, at the protocol's temperature for that unit."""
    return settings.model_copy(update={"temperature": config.temperature_for(index)})


def write_tasks(store: RunStore, tasks: Sequence[Task]) -> None:
    """Keep the task records with the run, so reports can re-grade (iteration ablation) without them."""
    atomic_write(store.root / TASKS, "".join(t.model_dump_json() + "\n" for t in tasks))


def _selection_current(selection: Selection | None, units: Mapping[int, UnitRecord]) -> bool:
    if selection is None:
        return False
    non_empty = {i for i, u in units.items() if not u.empty}
    return {int(c["index"]) for c in selection.candidates} == non_empty and selection.chosen in units


class _Run:
    """One run's state: the units on disk, the selections, and what is queued or in flight."""

    def __init__(self, tasks: Sequence[Task], config: ProtocolConfig, settings: RunSettings | None,
                 predictions: Mapping[str, Prediction] | None, harness: HarnessSettings,
                 units: dict[str, dict[int, UnitRecord]]) -> None:  # fmt: skip
        self.by_id = {t.instance_id: t for t in tasks}
        self.config, self.settings, self.predictions, self.harness = config, settings, predictions, harness
        self.store = harness.store()
        self.units = units
        self.selections = {i: s for i in self.by_id if (s := self.store.read_selection(i))}
        self.scheduled: set[tuple[str, int | None]] = set()  # queued or in flight
        self.blocked: set[tuple[str, int | None]] = set()  # lost to a dead worker: left for resume

    def pending(self, iid: str) -> list[int]:
        if self.predictions is not None and iid not in self.predictions:
            return []  # nothing to grade: the instance stays incomplete
        return self.config.protocol.pending(self.config, self.units[iid])

    def complete(self, iid: str) -> bool:
        if self.predictions is not None and iid not in self.predictions:
            return False
        if self.pending(iid):
            return False
        return not self.config.protocol.selects or _selection_current(
            self.selections.get(iid), self.units[iid]
        )

    def job(self, iid: str, index: int) -> AttemptJob:
        task = self.by_id[iid]
        if self.settings is None:
            assert self.predictions is not None
            return AttemptJob(task, index, None, self.harness, patch=self.predictions[iid].model_patch)
        return AttemptJob(task, index, unit_settings(self.settings, self.config, index), self.harness)

    def jobs_for(self, iid: str) -> list[tuple[str, int | None, AttemptJob | SelectJob]]:
        """The task's next jobs that are not already scheduled; marks them scheduled."""
        busy = {idx for (t, idx) in self.scheduled | self.blocked if t == iid}
        todo = self.pending(iid)
        out: list[tuple[str, int | None, AttemptJob | SelectJob]] = [
            (iid, i, self.job(iid, i)) for i in todo if i not in busy
        ]
        if self.config.protocol.selects and not todo and not busy and not self.complete(iid):
            patches = {i: u.patch for i, u in self.units[iid].items()}
            out.append((iid, None, SelectJob(self.by_id[iid], patches, self.harness)))
        self.scheduled.update((t, idx) for t, idx, _ in out)
        return out

    def publish(self, iid: str) -> bool:
        """Write the instance's verdict.json and prediction.json from its chosen unit when the task is
        complete; remove a stale verdict when it is not. Returns whether it has a verdict now."""
        index = (
            self.config.protocol.chosen(self.units[iid], self.selections.get(iid))
            if self.complete(iid)
            else None
        )
        if index is None:
            # e.g. left from a run with fewer samples: no longer the answer
            (self.store.instance_dir(iid) / "verdict.json").unlink(missing_ok=True)
            return False
        unit = self.units[iid][index]
        verdict = unit.verdict.model_copy(deep=True)
        # The logs lie beside unit.json; from the instance's directory they are under attempts/<k>/.
        verdict.logs = {role: f"attempts/{index}/{name}" for role, name in verdict.logs.items()}
        verdict.extra.update({"protocol": self.config.name, "unit": unit.index, "temperature": unit.temperature,
                              "exit_status": unit.exit_status})  # fmt: skip
        prediction = Prediction(
            instance_id=iid, model_name_or_path=self.harness.model_name, model_patch=unit.patch
        )
        # Written only when changed: a resumed run leaves the files of finished instances as they were.
        if self.store.read_prediction(iid) != prediction:
            self.store.write_prediction(prediction)
        if self.store.read_verdict(iid) != verdict:
            self.store.write_verdict(verdict)
        return True


def _model_name(settings: RunSettings | None, predictions: Mapping[str, Prediction] | None) -> str:
    if settings is not None:
        return settings.model
    names = {p.model_name_or_path for p in (predictions or {}).values()}
    return names.pop() if len(names) == 1 else "predictions"


def run_protocol(
    tasks: Sequence[Task],
    settings: RunSettings | None,
    config: ProtocolConfig,
    *,
    predictions: Mapping[str, Prediction] | None = None,
    executor: Executor | None = None,
    run_id: str,
    output: Path = Path("runs"),
    cache_dir: Path | None = None,
    mirrors: Path | None = None,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    keep_workdirs: bool = False,
    model_name: str | None = None,
    confinement: tuple[str, Limits] | None = None,
    meta: dict[str, Any] | None = None,
    force_resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    grading: Rules = "swebench4",
    build_cache: bool = True,
) -> ProtocolResult:
    """Run `config`'s units for every task, with the agent `settings` or grading `predictions` (exactly one
    of the two; tasks without a prediction stay incomplete); write the run directory.

    Units already graded under `run_id` are reused (resume per task and attempt/sample), except agent
    errors, which are redone; a run or unit made with other settings is a ProtocolError unless
    `force_resume`. `executor` defaults to running jobs in this process. Grading runs in `confinement`
    (sandbox name, limits), by default the agent's (`settings.sandbox`, `settings.memory_limit`), under the
    official `grading` rules (swebench4 or swebench5), recorded in run.json and report.json. Install
    steps go through the build cache (eval/builds.py) unless `build_cache` is False.
    """
    if (settings is None) == (predictions is None):
        raise ValueError("run_protocol needs exactly one of settings or predictions=")
    started = time.monotonic()
    warnings: list[str] = []
    if confinement is None:
        try:
            sandbox, limits, warning = grading_confinement(
                settings.sandbox if settings else "auto",
                settings.memory_limit if settings else "8G",
                settings.disk_limit if settings else "10G",
            )
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        warnings += [warning] if warning else []
    else:
        sandbox, limits = confinement
    store = RunStore(Path(output), run_id)
    store.root.mkdir(parents=True, exist_ok=True)
    run_meta = {
        "protocol": config.describe(),
        "settings": settings.model_dump(mode="json", exclude={"base_url"}) if settings else None,
        "grading": grading,
    }
    units = check_resumable(store, config, tasks, run_meta, [(t.instance_id, i, job.key) for t in tasks for i, job in
                            _all_jobs(t, config, settings, predictions)], force=force_resume)  # fmt: skip
    harness = HarnessSettings(Path(output), run_id, Path(cache_dir) if cache_dir else None,
                              Path(mirrors) if mirrors else None, test_timeout, keep_workdirs,
                              model_name or _model_name(settings, predictions), sandbox, limits, grading,
                              build_cache)  # fmt: skip
    write_tasks(store, tasks)
    store.write_meta({**(meta or {}), "run_id": run_id, "model_name_or_path": harness.model_name,
                      "tasks": len(tasks), "layout": "attempts", **run_meta,
                      "test_timeout": test_timeout, "mirrors": str(mirrors) if mirrors else None,
                      "grading_sandbox": sandbox, "grading": grading, "build_cache": build_cache})  # fmt: skip
    run = _Run(tasks, config, settings, predictions, harness, units)
    done = {iid for iid in run.by_id if run.publish(iid)}
    counts: dict[str, int] = {c.value: 0 for c in Category}
    for iid in done:
        verdict = run.store.read_verdict(iid)
        counts[verdict.category if verdict else Category.ERROR] += 1

    def report_progress() -> None:
        if on_progress is not None:
            on_progress(Progress(len(done), len(run.by_id), dict(counts)))

    report_progress()
    executor = executor or LocalExecutor(1)
    kind, cache = "grade" if predictions is not None else "agent", cache_root(harness.cache_dir)
    order = (
        durations.longest_first(list(run.by_id), kind, durations.load(cache))
        if executor.capacity > 1
        else run.by_id
    )
    queue: deque[tuple[str, int | None, AttemptJob | SelectJob]] = deque(
        j for iid in order for j in run.jobs_for(iid)
    )
    in_flight: dict[Future[Any], tuple[str, int | None]] = {}
    started_at: dict[Future[Any], float] = {}
    ahead = _Ahead(queue) if getattr(executor, "prefetch", False) else None
    took: dict[str, float] = {}  # each instance's jobs, summed (the host's clock)
    lost: list[str] = []
    try:
        while queue or in_flight:
            batch = [queue.popleft() for _ in range(min(len(queue), executor.capacity - len(in_flight)))]
            for iid, idx, job in batch:
                hint = ahead.hint(job) if ahead is not None else None
                if hint is not None and isinstance(job, AttemptJob) and isinstance(hint[2], AttemptJob):
                    job = replace(job, prefetch=hint[2])
                if ahead is not None and isinstance(job, AttemptJob) and job.settings is not None:
                    job = replace(job, stage_grading=True)  # its grading's box, made while the agent works
                fn: Callable[[Any], Any] = run_attempt if isinstance(job, AttemptJob) else run_selection
                at = time.monotonic()  # before: one worker runs the job inside submit
                future_job = executor.submit(fn, job)
                in_flight[future_job], started_at[future_job] = (iid, idx), at
                if ahead is not None:
                    ahead.given[future_job] = hint
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in finished:
                if ahead is not None:
                    ahead.done(future)
                iid, idx = in_flight.pop(future)
                took[iid] = took.get(iid, 0.0) + time.monotonic() - started_at.pop(future)
                run.scheduled.discard((iid, idx))
                try:
                    result = future.result()
                except Exception as exc:  # a worker died: leave the unit undone, for resume
                    run.blocked.add((iid, idx))
                    where = "select" if idx is None else idx
                    lost.append(f"{iid}#{where}: {type(exc).__name__}: {exc}".splitlines()[0])
                    continue
                if isinstance(result, Selection):
                    run.selections[iid] = result
                else:
                    run.units[iid][result.index] = result
                queue.extend(run.jobs_for(iid))
                if iid not in done and run.publish(iid):
                    done.add(iid)
                    verdict = run.store.read_verdict(iid)
                    counts[verdict.category if verdict else Category.ERROR] += 1
                    report_progress()
    except BaseException:
        executor.close(cancel=True)
        wait_removed()
        raise
    executor.close()
    wait_removed()  # the work dirs this process queued for removal (a pool's workers joined theirs)
    durations.save(cache, kind, {iid: s for iid, s in took.items() if iid in done})
    return _finish(run, lost, warnings, time.monotonic() - started)


_Queued = tuple[str, int | None, "AttemptJob | SelectJob"]


class _Ahead:
    """Which queued attempt each submitted one stages ahead (executors with `prefetch`): a grading's box,
    or an agent's tree (eval/prefetch.py).

    A job's hint is the first queued attempt that no job in flight was given. When the job ends, its
    hint moves to the front of the queue: the next submit goes to the worker that just came free (the
    only idle one), which is the one that staged it. Should two finish at once and the workers swap,
    each finds the wrong tree staged and makes its own, which costs time, never a result."""

    def __init__(self, queue: deque[_Queued]):
        self.queue = queue
        self.given: dict[Future[Any], _Queued | None] = {}

    def hint(self, job: AttemptJob | SelectJob) -> _Queued | None:
        if not isinstance(job, AttemptJob):
            return None
        taken = {(h[0], h[1]) for h in self.given.values() if h is not None}
        return next(
            (q for q in self.queue if isinstance(q[2], AttemptJob) and (q[0], q[1]) not in taken),
            None,
        )  # fmt: skip

    def done(self, future: Future[Any]) -> None:
        hint = self.given.pop(future, None)
        at = next((i for i, q in enumerate(self.queue) if q is hint), None)
        if at is not None:
            del self.queue[at]
            self.queue.appendleft(hint)  # type: ignore[arg-type]


def _all_jobs(task: Task, config: ProtocolConfig, settings: RunSettings | None,
              predictions: Mapping[str, Prediction] | None) -> list[tuple[int, AttemptJob]]:  # fmt: skip
    """Every unit the task could get, as jobs (for their fingerprints)."""
    h = HarnessSettings(Path("."), "-")
    if settings is None:
        if predictions is None or task.instance_id not in predictions:
            return []
        return [(0, AttemptJob(task, 0, None, h, patch=predictions[task.instance_id].model_patch))]
    return [
        (i, AttemptJob(task, i, unit_settings(settings, config, i), h)) for i in range(config.units_per_task)
    ]


def _finish(run: _Run, lost: list[str], warnings: list[str], duration: float) -> ProtocolResult:
    ids = list(run.by_id)
    for iid in ids:
        run.publish(iid)
    report = run.store.write_report(ids, duration)
    sections = protocol_section(run.config, ids, run.units, run.selections)
    if lost:
        sections["lost_units"] = lost
    # report.json keeps the standard fields first, then the protocol's sections.
    atomic_write(
        run.store.root / "report.json",
        json.dumps({**report.model_dump(mode="json"), "grading": run.harness.grading, **sections}, indent=1)
        + "\n",
    )
    return ProtocolResult(report, sections, lost, warnings)
