"""Reading a finished (or stopped) run directory back: its protocol, tasks, units and selections.

Runs have one record per attempt (instances/<id>/attempts/<k>/unit.json); runs made by devloop 0.1's
single-attempt runner have one verdict per instance and the agent's run in instances/<id>/agent/, read
here as unit 0 so every report treats both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devloop.eval.protocols import ProtocolConfig
from devloop.eval.records import TASKS, Selection, UnitRecord, settings_key
from devloop.eval.store import UnitStore
from devloop.tasks.model import Task


@dataclass
class RunData:
    """One run as reports see it."""

    root: Path
    label: str
    config: ProtocolConfig
    task_ids: list[str]
    units: dict[str, dict[int, UnitRecord]]
    selections: dict[str, Selection] = field(default_factory=dict)
    temperature: float | None = None
    max_iterations: int | None = None
    model: str = ""

    @property
    def store(self) -> UnitStore:
        return UnitStore(self.root.parent, self.root.name)

    def tasks(self) -> list[Task]:
        """The task records kept with the run (tasks.jsonl); [] when the run has none."""
        path = self.root / TASKS
        if not path.is_file():
            return []
        return [
            Task.model_validate_json(line) for line in path.read_text("utf-8").splitlines() if line.strip()
        ]

    def trajectory(self, instance_id: str, index: int) -> Path:
        """The agent's trajectory of a unit (devloop 0.1 runs keep it in instances/<id>/agent/)."""
        path = self.store.unit_dir(instance_id, index) / "agent" / "trajectory.jsonl"
        return path if path.is_file() else self.store.instance_dir(instance_id) / "agent" / "trajectory.jsonl"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _start_settings(trajectory: Path) -> dict[str, Any]:
    try:
        with trajectory.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError):
        return {}
    return first.get("settings", {}) if isinstance(first, dict) else {}


def _unit_from_0_1(store: UnitStore, instance_id: str) -> UnitRecord | None:
    verdict = store.read_verdict(instance_id)
    if verdict is None:
        return None
    agent = store.instance_dir(instance_id) / "agent"
    result = _json(agent / "result.json")
    settings = _start_settings(agent / "trajectory.jsonl")
    prediction = store.read_prediction(instance_id)
    return UnitRecord(
        instance_id=instance_id, index=0, temperature=float(settings.get("temperature", 0.0)),
        max_iterations=int(settings.get("max_iterations", 0)), settings_key=settings_key(settings),
        exit_status=result.get("exit_status"), steps=int(result.get("steps") or 0),
        patch=prediction.model_patch if prediction else "", verdict=verdict,
    )  # fmt: skip


def load_run_data(path: Path) -> RunData:
    """Read the run at `path` (its directory, or its report.json). Raises ValueError naming the path."""
    root = path.parent if path.name == "report.json" else path
    if not (root / "report.json").is_file() and not (root / "run.json").is_file():
        raise ValueError(f"{root}: not a devloop run directory (no report.json or run.json)")
    store = UnitStore(root.parent, root.name)
    meta, report = store.read_run_meta(), _json(root / "report.json")
    try:
        config = (
            ProtocolConfig.model_validate(meta["protocol"])
            if isinstance(meta.get("protocol"), dict)
            else ProtocolConfig()
        )
    except (ValidationError, TypeError) as exc:
        raise ValueError(f"{root / 'run.json'}: bad protocol section ({exc})".splitlines()[0]) from None
    ids: list[str] = []
    if (root / TASKS).is_file():
        ids = [
            json.loads(line)["instance_id"]
            for line in (root / TASKS).read_text("utf-8").splitlines()
            if line.strip()
        ]
    else:
        for key in ("resolved_ids", "unresolved_ids", "empty_patch_ids", "error_ids", "incomplete_ids"):
            ids += [i for i in report.get(key, []) if isinstance(i, str)]
    ids = list(dict.fromkeys(ids))
    units: dict[str, dict[int, UnitRecord]] = {}
    for iid in ids:
        units[iid] = store.units(iid)
        if not units[iid] and (old := _unit_from_0_1(store, iid)):
            units[iid] = {0: old}
    selections = {i: s for i in ids if (s := store.read_selection(i))}
    raw_settings = meta.get("settings")
    settings: dict[str, Any] = raw_settings if isinstance(raw_settings, dict) else {}
    first = next((u for us in units.values() for u in us.values()), None)
    temperature = config.protocol.run_temperature(config)
    if temperature is not None and not settings and first is not None:
        temperature = first.temperature
    max_iterations = settings.get("max_iterations") or (first.max_iterations if first else None) or None
    return RunData(root=root, label=root.name, config=config, task_ids=ids, units=units, selections=selections,
                   temperature=temperature, max_iterations=max_iterations,
                   model=str(meta.get("model_name_or_path") or settings.get("model") or ""))  # fmt: skip
