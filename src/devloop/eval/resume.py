"""Whether a run directory may be resumed as asked, and which of its units are kept.

A run id remembers its protocol and its agent settings (run.json) and each unit its fingerprint
(unit.json): resuming with others would mix attempts made under different settings into one figure, so it
is refused with one line (`force` overrides the settings check). Units that failed in the agent (model
server down, runtime broken) are not the model's answer and are redone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devloop.eval.protocols import ProtocolConfig
from devloop.eval.records import TRANSPORT_FIELDS, UnitRecord, settings_key
from devloop.eval.store import RunStore
from devloop.eval.verdict import Category
from devloop.tasks.model import Task

FORCE_HINT = "resume with the same settings, use a new --run-id, or add --force-resume"


class ProtocolError(ValueError):
    """The run cannot go on as asked (e.g. resuming with other settings); the message is one line."""


def is_0_1_layout(store: RunStore) -> bool:
    """Whether the directory has devloop 0.1's single-run layout (instances/<id>/agent/, no attempts/)."""
    if not store.instances.is_dir():
        return False
    return any(
        (d / "verdict.json").is_file() and not (d / "attempts").is_dir() for d in store.instances.iterdir()
    )


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(
        k for k in old.keys() | new.keys() if k not in TRANSPORT_FIELDS and old.get(k) != new.get(k)
    )
    shown = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3]]
    return ", ".join(shown) + (", ..." if len(keys) > 3 else "")


def _check_run(store: RunStore, config: ProtocolConfig, run_meta: dict[str, Any], force: bool) -> None:
    previous = store.read_run_meta()
    protocol = previous.get("protocol")
    if isinstance(protocol, dict) and protocol.get("name") not in (None, config.name):
        raise ProtocolError(f"{store.root}: this run used --protocol {protocol['name']}; "
                            f"resume it with that protocol or use a new --run-id")  # fmt: skip
    # A run recorded before the rules were selectable was graded with swebench4, the default.
    old_rules, new_rules = previous.get("grading") or "swebench4", run_meta.get("grading")
    if new_rules is not None and old_rules != new_rules and not force and store.instances.is_dir():
        raise ProtocolError(
            f"{store.root}: this run id was graded with --grading {old_rules}, not {new_rules}; {FORCE_HINT}"
        )
    if force or "settings" not in previous:
        return
    old, new = previous.get("settings"), run_meta.get("settings")
    if old is None or new is None:
        if old is not new:
            made = "the agent" if old is not None else "--predictions"
            raise ProtocolError(f"{store.root}: this run id was made with {made}; {FORCE_HINT}")
        return
    if isinstance(old, dict) and settings_key(old) != settings_key(new):
        raise ProtocolError(
            f"{store.root}: this run id was made with other agent settings ({_differences(old, new)}); {FORCE_HINT}"
        )


def check_resumable(store: RunStore, config: ProtocolConfig, tasks: Sequence[Task], run_meta: dict[str, Any],
                    keys: Sequence[tuple[str, int, str]], *, force: bool = False) -> dict[str, dict[int, UnitRecord]]:  # fmt: skip
    """The units to keep, by task and index; ProtocolError (one line) when the run may not go on.

    `keys`: (instance id, index, fingerprint) of every unit the run could make now."""
    if is_0_1_layout(store):
        raise ProtocolError(
            f"{store.root}: made by devloop 0.1 (instances/<id>/agent/ layout): `devloop report` and "
            "`devloop compare` still read it, but it cannot be resumed; use a new --run-id"
        )
    _check_run(store, config, run_meta, force)
    want = {(iid, index): key for iid, index, key in keys}
    units: dict[str, dict[int, UnitRecord]] = {}
    for task in tasks:
        iid = task.instance_id
        units[iid] = {}
        for index, unit in store.units(iid).items():
            if unit.verdict.category == Category.AGENT_ERROR:
                continue  # not the model's answer: redone
            key = want.get((iid, index))
            if key is not None and unit.settings_key != key:
                if key.startswith("prediction-"):
                    continue  # another patch for the instance: graded afresh
                if not force:
                    raise ProtocolError(
                        f"{store.unit_dir(iid, index)}: made with other agent settings (temperature "
                        f"{unit.temperature:g}, max_iterations {unit.max_iterations}); {FORCE_HINT}"
                    )
            units[iid][index] = unit
    return units
