"""The eval run directory, one layout for every protocol:

    <run>/run.json, tasks.jsonl, report.json, predictions.jsonl
    <run>/instances/<id>/verdict.json, prediction.json      the chosen attempt's (the instance's answer)
    <run>/instances/<id>/selection.json                     best-of's choice
    <run>/instances/<id>/attempts/<k>/unit.json              one graded attempt (a UnitRecord)
    <run>/instances/<id>/attempts/<k>/agent/, *.log, ...     its agent run and grading logs

Every file is written to a temporary name and renamed into place, so a `kill -9` at any moment leaves
each record either complete or absent; a resumed run redoes exactly the attempts without a unit.json.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from devloop.eval.records import SELECTION, UNIT, Selection, UnitRecord
from devloop.eval.verdict import ERROR_CATEGORIES, Category, Verdict
from devloop.stats.intervals import wilson
from devloop.tasks.model import Prediction
from devloop.tasks.predictions import write_predictions
from devloop.tasks.safety import check_component
from devloop.trajectory import mark_run_dir

VERDICT = "verdict.json"
PREDICTION = "prediction.json"


def atomic_write(path: Path, text: str, *, durable: bool = True) -> None:
    """Write `text` to `path` through a temporary file in the same directory, then renamed: a reader (or
    a run killed at any moment) sees the old file or the new one, never part of one. `durable`: fsync'd
    before the rename, so it also survives the machine going down. A file rebuilt from others on resume
    (an instance's verdict.json and prediction.json, from its unit.json) need not pay for that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


class Report(BaseModel):
    """The run summary written to report.json; id lists follow SWE-bench's report."""

    run_id: str
    total: int
    completed: int
    """Instances whose tests ran (resolved + unresolved)."""
    resolved: int
    unresolved: int
    empty_patch: int
    error: int
    """patch_apply_failed + env_error + timeout + agent_error + error."""
    resolve_rate: float
    """resolved / total."""
    resolve_rate_ci: tuple[float, float] = (0.0, 1.0)
    """Wilson 95 % interval of resolve_rate."""
    resolved_ids: list[str] = Field(default_factory=list)
    unresolved_ids: list[str] = Field(default_factory=list)
    empty_patch_ids: list[str] = Field(default_factory=list)
    error_ids: list[str] = Field(default_factory=list)
    patch_apply_failed_ids: list[str] = Field(default_factory=list)
    env_error_ids: list[str] = Field(default_factory=list)
    timeout_ids: list[str] = Field(default_factory=list)
    agent_error: int = 0
    """Instances whose agent failed for a reason that is not the model's answer (model server, runtime)."""
    agent_error_ids: list[str] = Field(default_factory=list)
    partial_ids: list[str] = Field(default_factory=list)
    """Unresolved instances where some but not all FAIL_TO_PASS tests pass (PARTIAL)."""
    incomplete_ids: list[str] = Field(default_factory=list)
    """Instances with no verdict (no prediction, or the run was stopped before them)."""
    categories: dict[str, int] = Field(default_factory=dict)
    duration_s: float = 0.0


class RunStore:
    """Reads and writes one eval run directory `<output_dir>/<run_id>/`."""

    def __init__(self, output_dir: Path, run_id: str):
        if not run_id or "/" in run_id or "\x00" in run_id or run_id in (".", ".."):
            raise ValueError(f"run id {run_id!r} must be a plain directory name")
        self.run_id = run_id
        self.root = Path(output_dir) / run_id
        self.instances = self.root / "instances"

    def instance_dir(self, instance_id: str) -> Path:
        """The directory of one instance's verdict, logs and agent run: `instances/<instance_id>`.

        The id is the directory name as it is, so it must be one safe path component (as the loaders
        check); anything else (`..`, `a/b`, NUL...) is a one-line ValueError, even from a caller that
        built its Task without a loader.
        """
        return self.instances / check_component(instance_id)

    def read_verdict(self, instance_id: str) -> Verdict | None:
        """The instance's verdict, or None when it has none (or an unreadable one, to be redone)."""
        return _read(Verdict, self.instance_dir(instance_id) / VERDICT)

    def write_verdict(self, verdict: Verdict) -> Path:
        """Write the verdict atomically; its presence marks the instance as done. Not fsync'd: it is a
        copy of the chosen unit's record (fsync'd before it), which a resumed run publishes again when
        the verdict is missing or unreadable."""
        path = self.instance_dir(verdict.instance_id) / VERDICT
        atomic_write(path, verdict.model_dump_json(indent=1) + "\n", durable=False)
        return path

    def done_ids(self) -> set[str]:
        """Ids of instances with a complete verdict (stray temporary files are ignored)."""
        if not self.instances.is_dir():
            return set()
        done = set()
        for entry in self.instances.iterdir():
            path = entry / VERDICT
            if path.is_file():
                try:
                    done.add(Verdict.model_validate_json(path.read_text(encoding="utf-8")).instance_id)
                except (OSError, ValidationError):
                    continue
        return done

    def read_prediction(self, instance_id: str) -> Prediction | None:
        """A patch an agent already produced for the instance (reused on resume), or None."""
        return _read(Prediction, self.instance_dir(instance_id) / PREDICTION)

    def write_prediction(self, prediction: Prediction) -> None:
        # Rebuilt from the unit's record on resume, as the verdict is.
        atomic_write(
            self.instance_dir(prediction.instance_id) / PREDICTION,
            prediction.model_dump_json() + "\n",
            durable=False,
        )

    def build_report(self, instance_ids: Iterable[str], duration_s: float = 0.0) -> Report:
        """Summarise the verdicts on disk for `instance_ids` (in that order)."""
        ids = list(dict.fromkeys(instance_ids))
        by_category: dict[Category, list[str]] = {c: [] for c in Category}
        incomplete, partial = [], []
        for iid in ids:
            verdict = self.read_verdict(iid)
            if verdict is None:
                incomplete.append(iid)
                continue
            by_category[verdict.category].append(iid)
            if verdict.resolution == "PARTIAL":
                partial.append(iid)
        errors = [i for i in ids if any(i in by_category[c] for c in ERROR_CATEGORIES)]
        resolved = by_category[Category.RESOLVED]
        lo, hi = wilson(len(resolved), len(ids))
        return Report(
            run_id=self.run_id,
            total=len(ids),
            completed=len(resolved) + len(by_category[Category.UNRESOLVED]),
            resolved=len(resolved),
            unresolved=len(by_category[Category.UNRESOLVED]),
            empty_patch=len(by_category[Category.EMPTY_PATCH]),
            error=len(errors),
            resolve_rate=round(len(resolved) / len(ids), 4) if ids else 0.0,
            resolve_rate_ci=(round(lo, 4), round(hi, 4)),
            resolved_ids=resolved,
            unresolved_ids=by_category[Category.UNRESOLVED],
            empty_patch_ids=by_category[Category.EMPTY_PATCH],
            error_ids=errors,
            patch_apply_failed_ids=by_category[Category.PATCH_APPLY_FAILED],
            env_error_ids=by_category[Category.ENV_ERROR],
            timeout_ids=by_category[Category.TIMEOUT],
            agent_error=len(by_category[Category.AGENT_ERROR]),
            agent_error_ids=by_category[Category.AGENT_ERROR],
            partial_ids=partial,
            incomplete_ids=incomplete,
            categories={c.value: len(v) for c, v in by_category.items()},
            duration_s=round(duration_s, 3),
        )

    def write_report(self, instance_ids: Iterable[str], duration_s: float = 0.0) -> Report:
        """Build the report, write report.json and predictions.jsonl (SWE-bench format); return it."""
        report = self.build_report(instance_ids, duration_s)
        atomic_write(self.root / "report.json", report.model_dump_json(indent=1) + "\n")
        preds = [p for iid in report.resolved_ids + report.unresolved_ids + report.empty_patch_ids
                 + report.error_ids if (p := self.read_prediction(iid)) is not None]  # fmt: skip
        if preds:
            write_predictions(self.root / "predictions.jsonl", preds)
        return report

    def write_meta(self, meta: dict[str, object]) -> None:
        """Record how the run was started (arguments, versions) in run.json."""
        atomic_write(self.root / "run.json", json.dumps({**meta, "updated": time.time()}, indent=1) + "\n")
        # Marked like an agent's run directory, so a workspace made from a repository that holds this run
        # (an eval run under ./runs inside it) never copies its gold patches and logs in.
        mark_run_dir(self.root)

    def read_run_meta(self) -> dict[str, Any]:
        """run.json as a dict ({} when absent or unreadable)."""
        try:
            data = json.loads((self.root / "run.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def unit_dir(self, instance_id: str, index: int) -> Path:
        """`instances/<id>/attempts/<index>`; ValueError (one line) for an unsafe id or a bad index."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"attempt index must be a whole number >= 0, got {index!r}")
        return self.instance_dir(instance_id) / "attempts" / str(index)

    def read_unit(self, instance_id: str, index: int) -> UnitRecord | None:
        """The unit's record, or None when it has none (or an unreadable one, to be redone)."""
        return _read(UnitRecord, self.unit_dir(instance_id, index) / UNIT)

    def write_unit(self, record: UnitRecord) -> None:
        _write(self.unit_dir(record.instance_id, record.index) / UNIT, record)

    def units(self, instance_id: str) -> dict[int, UnitRecord]:
        """Every complete unit of an instance, by index."""
        base = self.instance_dir(instance_id) / "attempts"
        out: dict[int, UnitRecord] = {}
        if base.is_dir():
            for entry in base.iterdir():
                if entry.name.isdigit() and (record := self.read_unit(instance_id, int(entry.name))):
                    out[record.index] = record
        return dict(sorted(out.items()))

    def read_selection(self, instance_id: str) -> Selection | None:
        return _read(Selection, self.instance_dir(instance_id) / SELECTION)

    def write_selection(self, selection: Selection) -> None:
        _write(self.instance_dir(selection.instance_id) / SELECTION, selection)


UnitStore = RunStore
"""The name reports used for the store with attempt records; the same class."""

M = TypeVar("M", bound=BaseModel)


def _read(model: type[M], path: Path) -> M | None:
    try:
        return model.model_validate_json(path.read_text("utf-8"))
    except (OSError, ValidationError):
        return None


def _write(path: Path, record: BaseModel) -> None:
    atomic_write(path, record.model_dump_json(indent=1) + "\n")


def default_run_id() -> str:
    """A fresh run id: the local date and time."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")
