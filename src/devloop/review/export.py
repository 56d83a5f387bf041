"""The reviewed patches out of the runs: SWE-bench predictions, and (failing, corrected, passing tests)
triples for training a patch refiner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devloop.eval.rundata import RunData
from devloop.eval.store import atomic_write
from devloop.review.decisions import patch_sha256, read_reviews


def _decided(runs: dict[str, RunData]):  # type: ignore[no-untyped-def]
    for run in runs.values():
        for (iid, k), rec in sorted(read_reviews(run.root).latest.items()):
            unit = run.units.get(iid, {}).get(k)
            # A decision made on another patch than the attempt's (the run was redone) is stale: left out.
            if unit is None or rec.get("model_patch_sha256") != patch_sha256(unit.patch):
                continue
            yield run, unit, rec


def _regrade_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The decision's re-grade when it graded the very patch saved (a hand-edited line may say otherwise)."""
    regrade = rec.get("regrade")
    corrected = rec.get("corrected_patch")
    if not isinstance(regrade, dict) or not isinstance(corrected, str):
        return None
    return regrade if regrade.get("patch_sha256") == patch_sha256(corrected) else None


def export_predictions(runs: dict[str, RunData], path: Path) -> int:
    """Accepted patches as they are and corrected ones as corrected, one SWE-bench prediction a line."""
    lines = []
    for run, unit, rec in _decided(runs):
        if rec["action"] == "reject":
            continue
        patch = rec.get("corrected_patch") if rec["action"] == "correct" else unit.patch
        lines.append(json.dumps({"instance_id": unit.instance_id, "model_name_or_path": f"{run.model or run.label}+review",
                                 "model_patch": patch or ""}))  # fmt: skip
    atomic_write(path, "".join(line + "\n" for line in lines))
    return len(lines)


def export_triples(runs: dict[str, RunData], path: Path) -> int:
    """One line per correction of a failing patch: failing_patch, corrected_patch, passing_tests, and
    `regrade`: the sandboxed re-grade of exactly the corrected patch (verdict and the FAIL_TO_PASS /
    PASS_TO_PASS tests that decide it), or null when the reviewer saved it without running the tests."""
    lines = []
    for run, unit, rec in _decided(runs):
        if rec["action"] != "correct" or unit.resolved:
            continue
        task = next((t for t in run.tasks() if t.instance_id == unit.instance_id), None)
        tests = [*task.FAIL_TO_PASS, *task.PASS_TO_PASS] if task else sorted(unit.verdict.tests)
        lines.append(json.dumps({"instance_id": unit.instance_id, "run": run.label, "attempt": unit.index,
                                 "failing_patch": unit.patch, "corrected_patch": rec.get("corrected_patch"),
                                 "passing_tests": tests, "regrade": _regrade_of(rec)}))  # fmt: skip
    atomic_write(path, "".join(line + "\n" for line in lines))
    return len(lines)
