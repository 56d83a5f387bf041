"""The review queue: one item per graded attempt of the runs given, in the order a person should see them."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.eval.records import UnitRecord
from devloop.eval.rundata import RunData, load_run_data
from devloop.eval.verdict import Category
from devloop.review.failures import LogView, failure_summary
from devloop.safefs import read_without_links
from devloop.tasks.model import Task

# Queue order: the Rescue queue's needs_review first, then unresolved, then unverified (no tests ran).
PRIORITY = {"needs_review": 0, "unresolved": 1, "unverified": 2}


@dataclass
class Item:
    run: str
    instance_id: str
    attempt: int
    repo: str
    category: str
    kind: str
    """needs_review | unresolved | unverified (resolved attempts are not queued)."""
    unit: UnitRecord
    task: Task | None

    @property
    def key(self) -> str:
        return f"{self.run}/{self.instance_id}/{self.attempt}"

    @property
    def failing(self) -> list[str]:
        status = self.unit.verdict.tests_status
        return [*status.FAIL_TO_PASS["failure"], *status.PASS_TO_PASS["failure"]]


# A run directory holds what a model's run left: its files are read without following any link (a link
# planted at agent/result.json or trajectory.jsonl must not show the reviewer another file of the host).
MAX_RESULT_BYTES = 1 << 20
MAX_TRAJECTORY_BYTES = 64 << 20


def _read(run: RunData, path: Path, max_bytes: int) -> str:
    """The text of `path` (inside the run) reached without a link; SafeFSError (an OSError) otherwise."""
    rel = path.relative_to(run.root).as_posix()
    return read_without_links(run.root, rel, max_bytes).decode("utf-8", "replace")


def _result(run: RunData, iid: str, k: int) -> dict[str, Any]:
    try:
        data = json.loads(_read(run, run.store.unit_dir(iid, k) / "agent" / "result.json", MAX_RESULT_BYTES))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _kind(run: RunData, unit: UnitRecord) -> str | None:
    if _result(run, unit.instance_id, unit.index).get("needs_review") is True:
        return "needs_review"
    if unit.verdict.category == Category.RESOLVED:
        return None
    return "unresolved" if unit.verdict.category == Category.UNRESOLVED else "unverified"


def load_runs(paths: list[Path]) -> dict[str, RunData]:
    """Runs by name; ValueError (one line naming the path) for a directory that is not a run."""
    runs, problems = load_runs_lenient(paths)
    if problems:
        raise ValueError(problems[0])
    return runs


def load_runs_lenient(paths: list[Path]) -> tuple[dict[str, RunData], list[str]]:
    """The runs that load, by name, and one line for each path that is not a run (served beside them)."""
    runs: dict[str, RunData] = {}
    problems: list[str] = []
    for path in paths:
        try:
            run = load_run_data(Path(path))
        except ValueError as exc:
            line = (str(exc) or type(exc).__name__).splitlines()[0]
            problems.append(line if str(path) in line else f"{path}: not a readable run ({line})")
            continue
        except (OSError, KeyError, TypeError) as exc:
            problems.append(f"{path}: cannot read the run ({type(exc).__name__}: {exc})".splitlines()[0])
            continue
        name, n = run.label, 2
        while name in runs:
            name, n = f"{run.label}-{n}", n + 1
        runs[name] = run
    return runs, problems


def queue(runs: dict[str, RunData]) -> list[Item]:
    items: list[Item] = []
    for name, run in runs.items():
        try:
            tasks = {t.instance_id: t for t in run.tasks()}
        except ValueError:
            tasks = {}
        for iid, units in run.units.items():
            for k, unit in units.items():
                kind = _kind(run, unit)
                if kind is None:
                    continue
                task = tasks.get(iid)
                items.append(Item(name, iid, k, task.repo if task else "", unit.verdict.category.value,
                                  kind, unit, task))  # fmt: skip
    items.sort(key=lambda i: (PRIORITY[i.kind], i.run, i.instance_id, i.attempt))
    return items


def trajectory_steps(run: RunData, item: Item, limit: int = 200) -> tuple[list[dict[str, Any]], str]:
    """The agent's steps (each a dict as written), at most `limit`, and a line saying why there are none
    when the trajectory is there but cannot be read (a link, too large...); ([], "") without one."""
    attempt = run.store.unit_dir(item.instance_id, item.attempt) / "agent" / "trajectory.jsonl"
    older = run.store.instance_dir(item.instance_id) / "agent" / "trajectory.jsonl"  # devloop 0.1 runs
    text = None
    for path in (attempt, older):
        try:
            text = _read(run, path, MAX_TRAJECTORY_BYTES)
            break
        except OSError as exc:  # SafeFSError names the path relative to the run
            if exc.errno == errno.ENOENT:
                continue
            return [], f"{run.root}/{exc}; not shown".replace("\n", " ")
    steps: list[dict[str, Any]] = []
    for line in (text or "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "step":
            steps.append(event)
            if len(steps) >= limit:
                break
    return steps, ""


MAX_LOG_BYTES = 16 << 20


def read_test_log(run: RunData, item: Item) -> tuple[LogView | None, str]:
    """The attempt's test log as a reviewer reads it (each failure's error lines, the tail), and a line
    saying why it is not shown when it is there but cannot be read; (None, "") when the grade kept none."""
    name = item.unit.verdict.logs.get("test")
    if not name:
        return None, ""
    try:
        text = _read(run, run.store.unit_dir(item.instance_id, item.attempt) / name, MAX_LOG_BYTES)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, ""
        return None, f"{run.root}/{exc}; not shown".replace("\n", " ")
    except ValueError:  # a name leading out of the attempt's directory
        return None, f"{run.root}: the verdict's test log {name!r} is not a file of the attempt; not shown"
    return failure_summary(text), ""
