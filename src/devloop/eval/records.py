"""The typed records of a run directory: one per graded attempt (unit.json), best-of's selection.

A unit is one agent attempt (or sample) at one task: `(instance id, index, settings)`. Each has its own
directory `<run>/instances/<id>/attempts/<index>/` holding the agent's run (`agent/`), the grading logs,
and `unit.json`, written atomically once the attempt is graded. Its presence marks the unit as done, so a
killed run resumes per unit. Best-of's choice is `<run>/instances/<id>/selection.json`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field, field_validator

from devloop.eval.verdict import Category, Verdict
from devloop.tasks.safety import check_component

UNIT = "unit.json"
SELECTION = "selection.json"
TASKS = "tasks.jsonl"

# Settings that change how a server is reached, not what the agent does: ignored when matching units.
TRANSPORT_FIELDS = ("base_url", "api_key_env", "max_retries", "request_timeout", "keep_workspace")


def settings_key(settings: dict[str, Any]) -> str:
    """A short fingerprint of the agent settings that shape an attempt's outcome (model, temperature,
    limits, format, prompts...), so a resumed run never mixes attempts made under different settings."""
    kept = {k: v for k, v in sorted(settings.items()) if k not in TRANSPORT_FIELDS}
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
