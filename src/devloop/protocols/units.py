"""Units of protocol work and where they live on disk.

A unit is one agent attempt (or sample) at one task: `(instance id, index, settings)`. Each has its own
directory `<run>/instances/<id>/attempts/<index>/` holding the agent's run (`agent/`), the grading logs,
and `unit.json`, written atomically once the attempt is graded. Its presence marks the unit as done, so a
killed run resumes per unit. Best-of's choice is `<run>/instances/<id>/selection.json`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from devloop.harness.store import RunStore, atomic_write
from devloop.harness.verdict import Category, Verdict
from devloop.tasks.safety import check_component

UNIT = "unit.json"
SELECTION = "selection.json"
TASKS = "tasks.jsonl"

# Settings that change how a server is reached, not what the agent does: ignored when matching units.
_TRANSPORT_FIELDS = ("base_url", "api_key_env", "max_retries", "request_timeout", "keep_workspace")


def settings_key(settings: dict[str, Any]) -> str:
    """A short fingerprint of the agent settings that shape an attempt's outcome (model, temperature,
    limits, format, prompts...), so a resumed run never mixes attempts made under different settings."""
    kept = {k: v for k, v in sorted(settings.items()) if k not in _TRANSPORT_FIELDS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


class UnitRecord(BaseModel):
    """One graded attempt: what the agent did (exit status, steps, patch) and the harness's verdict."""

    instance_id: str
    index: int
    """The attempt (iterative) or sample (samples, best-of) number, from 0."""
    temperature: float
    max_iterations: int
    settings_key: str
    exit_status: str | None = None
    """The agent's result.json exit_status ("finished", "max_iterations", ...); None if it never ran."""
    steps: int = 0
    patch: str = ""
    verdict: Verdict
    duration_s: float = 0.0

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        # Read back from unit.json and joined to paths (ablation caches): a bad id makes no record.
        return check_component(value)

    @property
    def finished(self) -> bool:
        return self.exit_status == "finished"

    @property
    def empty(self) -> bool:
        return not self.patch.strip()

    @property
    def resolved(self) -> bool:
        return self.verdict.category == Category.RESOLVED


class Selection(BaseModel):
    """Best-of's choice for one task and why. Built from visible tests and votes, never hidden tests."""

    instance_id: str
    chosen: int
    """The sample index whose patch is the prediction."""
    candidates: list[dict[str, Any]] = Field(default_factory=list)
    """Per sample: index, applied, regressions, own_tests_failed, own_tests_passed, votes, key."""
    rule: str = ""

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        return check_component(value)


class UnitStore(RunStore):
    """A RunStore that also reads and writes the per-unit records and best-of selections."""

    def unit_dir(self, instance_id: str, index: int) -> Path:
        """`instances/<id>/attempts/<index>`; ValueError (one line) for an unsafe id or a bad index."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"attempt index must be a whole number >= 0, got {index!r}")
        return self.instance_dir(instance_id) / "attempts" / str(index)

    def read_unit(self, instance_id: str, index: int) -> UnitRecord | None:
        """The unit's record, or None when it has none (or an unreadable one, to be redone)."""
        try:
            return UnitRecord.model_validate_json(
                (self.unit_dir(instance_id, index) / UNIT).read_text("utf-8")
            )
        except (OSError, ValidationError):
            return None

    def write_unit(self, record: UnitRecord) -> None:
        atomic_write(
            self.unit_dir(record.instance_id, record.index) / UNIT, record.model_dump_json(indent=1) + "\n"
        )

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
        try:
            return Selection.model_validate_json(
                (self.instance_dir(instance_id) / SELECTION).read_text("utf-8")
            )
        except (OSError, ValidationError):
            return None

    def write_selection(self, selection: Selection) -> None:
        atomic_write(
            self.instance_dir(selection.instance_id) / SELECTION, selection.model_dump_json(indent=1) + "\n"
        )

    def read_run_meta(self) -> dict[str, Any]:
        """run.json as a dict ({} when absent or unreadable)."""
        try:
            data = json.loads((self.root / "run.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
