"""`run_protocol`: run a protocol's units on an executor, resumably, and write the run's report.

The scheduler keeps `executor.capacity` jobs in flight. After each finished unit it asks the protocol's
rule (policy.pending) what that task needs next, so the iterative protocol's attempt 2 starts as soon as
that task's attempt 1 is graded, with no barrier between attempts. When a task is complete its chosen
unit becomes the instance's verdict.json and prediction.json (the issue-4 contract), and report.json gets
the protocol's sections as extra keys.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devloop.config import RunSettings
from devloop.harness.store import Report, atomic_write
from devloop.harness.taskbox import grading_confinement
from devloop.harness.ui import print_summary
from devloop.protocols.executors import Executor, LocalExecutor
from devloop.protocols.policy import ProtocolConfig, pending
from devloop.protocols.render import print_protocol
from devloop.protocols.summary import final_ids, protocol_section
from devloop.protocols.units import TASKS, Selection, UnitRecord, UnitStore, settings_key
from devloop.protocols.work import AttemptJob, HarnessSettings, SelectJob, run_attempt, run_selection
from devloop.tasks.model import Prediction, Task


class ProtocolError(ValueError):
    """The run cannot go on as asked (e.g. resuming with other settings); the message is one line."""


@dataclass
class ProtocolResult:
    """The standard report, the protocol's sections (also in report.json), and units left undone."""

    report: Report
    sections: dict[str, Any]
    lost: list[str] = field(default_factory=list)


def unit_settings(settings: RunSettings, config: ProtocolConfig, index: int) -> RunSettings:
    """The agent settings of unit `index`: the run's, at the protocol's temperature for that unit."""
    return settings.model_copy(update={"temperature": config.temperature_for(index)})


def write_tasks(store: UnitStore, tasks: Sequence[Task]) -> None:
    """Keep the task records with the run, so reports can re-grade (iteration ablation) without them."""
    atomic_write(store.root / TASKS, "".join(t.model_dump_json() + "\n" for t in tasks))


def _check_resumable(store: UnitStore, config: ProtocolConfig, settings: RunSettings,
                     tasks: Sequence[Task]) -> dict[str, dict[int, UnitRecord]]:  # fmt: skip
    previous = store.read_run_meta().get("protocol")
    if isinstance(previous, dict) and previous.get("name") not in (None, config.name):
        raise ProtocolError(f"{store.root}: this run used --protocol {previous['name']}; "
                            f"resume it with that protocol or use a new --run-id")  # fmt: skip
    units: dict[str, dict[int, UnitRecord]] = {}
    for task in tasks:
        units[task.instance_id] = found = store.units(task.instance_id)
        for index, unit in found.items():
            want = unit_settings(settings, config, index)
            if unit.settings_key != settings_key(want.model_dump(mode="json")):
                raise ProtocolError(
                    f"{store.unit_dir(task.instance_id, index)}: made with other agent settings "
                    f"(temperature {unit.temperature:g}, max_iterations {unit.max_iterations}; now "
                    f"{want.temperature:g}, {want.max_iterations}); use a new --run-id"
                )
    return units


def _selection_current(selection: Selection | None, units: dict[int, UnitRecord]) -> bool:
    if selection is None:
        return False
    non_empty = {i for i, u in units.items() if not u.empty}
    return {int(c["index"]) for c in selection.candidates} == non_empty and selection.chosen in units


def run_protocol(
    tasks: Sequence[Task],
    settings: RunSettings,
    config: ProtocolConfig,
    *,
    executor: Executor | None = None,
    run_id: str,
    output: Path = Path("runs"),
    cache_dir: Path | None = None,
    mirrors: Path | None = None,
    test_timeout: float = 1800.0,
    keep_workdirs: bool = False,
    model_name: str | None = None,
    progress: bool = True,
    console: Console | None = None,
    meta: dict[str, Any] | None = None,
) -> ProtocolResult:
    """Run `config`'s units for every task with the agent `settings`; write the run directory.

    Units already graded under `run_id` are reused (resume per task and attempt/sample); a unit made with
    other agent settings is an error (ProtocolError). `executor` defaults to running jobs in this process.
    Grading runs in the agent's sandbox with its limits (`settings.sandbox`, `settings.memory_limit`).
    """
    started = time.monotonic()
    try:
        sandbox, limits, warning = grading_confinement(
            settings.sandbox, settings.memory_limit, settings.disk_limit
        )
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    if warning and progress:
        (console or Console(stderr=True)).print(warning, markup=False, highlight=False)
    store = UnitStore(Path(output), run_id)
    store.root.mkdir(parents=True, exist_ok=True)
    units = _check_resumable(store, config, settings, tasks)
    harness = HarnessSettings(Path(output), run_id, Path(cache_dir) if cache_dir else None,
                              Path(mirrors) if mirrors else None, test_timeout, keep_workdirs,
                              model_name or settings.model, sandbox, limits)  # fmt: skip
    write_tasks(store, tasks)
    store.write_meta({**(meta or {}), "run_id": run_id, "model_name_or_path": harness.model_name,
                      "tasks": len(tasks), "protocol": config.describe(),
                      "settings": settings.model_dump(mode="json", exclude={"base_url"}),
                      "test_timeout": test_timeout, "grading_sandbox": sandbox})  # fmt: skip
    by_id = {t.instance_id: t for t in tasks}
    selections = {t.instance_id: s for t in tasks if (s := store.read_selection(t.instance_id))}
    in_flight: dict[Future[Any], tuple[str, int | None]] = {}
    lost: list[str] = []
    blocked: set[tuple[str, int | None]] = set()

    scheduled: set[tuple[str, int | None]] = set()  # queued or in flight

    def jobs_for(iid: str) -> list[tuple[str, int | None, Any]]:
        """The task's next jobs that are not already scheduled; marks them scheduled."""
        busy = {idx for (t, idx) in scheduled | blocked if t == iid}
        out: list[tuple[str, int | None, Any]] = [
            (iid, i, AttemptJob(by_id[iid], i, unit_settings(settings, config, i), harness))
            for i in pending(config, units[iid]) if i not in busy
        ]  # fmt: skip
        if (
            config.name == "best-of"
            and not out
            and not busy
            and not pending(config, units[iid])
            and not _selection_current(selections.get(iid), units[iid])
        ):
            out.append(
                (iid, None, SelectJob(by_id[iid], {i: u.patch for i, u in units[iid].items()}, harness))
            )
        scheduled.update((iid, idx) for iid, idx, _ in out)
        return out  # fmt: skip

    queue: deque[tuple[str, int | None, Any]] = deque(job for iid in by_id for job in jobs_for(iid))
    executor = executor or LocalExecutor(1)
    bar = Progress(TextColumn(f"[bold]{config.name}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("[green]{task.fields[resolved]} resolved[/]"), TimeElapsedColumn(),
                   console=console, disable=not progress)  # fmt: skip
    try:
        with bar:
            total = len(queue)
            row = bar.add_task("units", total=total, resolved=0)
            resolved = 0
            while queue or in_flight:
                while queue and len(in_flight) < executor.capacity:
                    iid, idx, job = queue.popleft()
                    fn = run_attempt if idx is not None else run_selection
                    in_flight[executor.submit(fn, job)] = (iid, idx)  # type: ignore[arg-type]
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    iid, idx = in_flight.pop(future)
                    scheduled.discard((iid, idx))
                    try:
                        result = future.result()
                    except Exception as exc:  # a worker died: leave the unit undone, for resume
                        blocked.add((iid, idx))
                        lost.append(f"{iid}#{'select' if idx is None else idx}: {type(exc).__name__}: {exc}"
                                    .splitlines()[0])  # fmt: skip
                        bar.advance(row)
                        continue
                    if isinstance(result, Selection):
                        selections[iid] = result
                    else:
                        units[iid][result.index] = result
                        resolved += result.resolved
                    bar.update(row, advance=1, resolved=resolved)
                    more = jobs_for(iid)
                    queue.extend(more)
                    if more:
                        total += len(more)
                        bar.update(row, total=total)
    except BaseException:
        executor.close(cancel=True)
        raise
    executor.close()
    return _finish(
        store, tasks, config, units, selections, lost, time.monotonic() - started, progress, console
    )


def _finish(store: UnitStore, tasks: Sequence[Task], config: ProtocolConfig, units: dict[str, dict[int, UnitRecord]],
            selections: dict[str, Selection], lost: list[str], duration: float, progress: bool,
            console: Console | None) -> ProtocolResult:  # fmt: skip
    ids = [t.instance_id for t in tasks]
    chosen = final_ids(config, ids, units, selections)
    model_name = str(store.read_run_meta().get("model_name_or_path") or "agent")
    for iid in ids:
        unit = chosen.get(iid) if not pending(config, units[iid]) else None
        path = store.instance_dir(iid) / "verdict.json"
        if unit is None:
            path.unlink(missing_ok=True)  # e.g. left from a run with fewer samples: no longer the answer
            continue
        verdict = unit.verdict.model_copy(deep=True)
        verdict.extra.update({"protocol": config.name, "unit": unit.index, "temperature": unit.temperature,
                              "exit_status": unit.exit_status})  # fmt: skip
        store.write_prediction(
            Prediction(instance_id=iid, model_name_or_path=model_name, model_patch=unit.patch)
        )
        store.write_verdict(verdict)
    report = store.write_report(ids, duration)
    sections = protocol_section(config, ids, units, selections)
    if lost:
        sections["lost_units"] = lost
    # report.json keeps the standard fields first, then the protocol's sections.
    atomic_write(
        store.root / "report.json",
        json.dumps({**report.model_dump(mode="json"), **sections}, indent=1) + "\n",
    )
    if progress:
        print_summary(report, console)
        print_protocol(sections, console)
    return ProtocolResult(report, sections, lost)
