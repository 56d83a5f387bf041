"""Predictions in SWE-bench's format: `{"instance_id", "model_name_or_path", "model_patch"}`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from devloop.tasks.loader import TaskLoadError, parse_records
from devloop.tasks.model import Prediction, Task


def load_predictions(source: str | Path, tasks: Sequence[Task]) -> dict[str, Prediction]:
    """Predictions by instance id: "gold" (each task's patch), "empty" (no patch), or a file.

    A file may be a .json list, a .json dict by id, or .jsonl. Predictions are strict: a bad record raises
    TaskLoadError (`file:line: field: problem`), since grading a partial set silently would mislead.
    """
    if str(source) == "gold":
        return {
            t.instance_id: Prediction(
                instance_id=t.instance_id, model_name_or_path="gold", model_patch=t.patch
            )
            for t in tasks
        }
    if str(source) == "empty":
        return {
            t.instance_id: Prediction(instance_id=t.instance_id, model_name_or_path="empty", model_patch="")
            for t in tasks
        }
    path = Path(source)
    if path.suffix not in (".json", ".jsonl"):
        raise TaskLoadError(f"{path}: predictions must be 'gold', 'empty', or a .json/.jsonl file")
    if not path.is_file():
        raise TaskLoadError(f"{path}: no such file")
    preds, _ = parse_records(path, Prediction, id_field="instance_id", strict=True)
    return {p.instance_id: p for p in preds}


def write_predictions(path: str | Path, predictions: Iterable[Prediction] | Mapping[str, Prediction]) -> Path:
    """Write predictions as .jsonl (one per line) or .json (a list), atomically; returns the path."""
    path = Path(path)
    items = list(predictions.values()) if isinstance(predictions, Mapping) else list(predictions)
    rows = [p.model_dump(mode="json") for p in items]
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        text = json.dumps(rows, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
