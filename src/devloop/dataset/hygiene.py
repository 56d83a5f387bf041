"""Decontamination: attempts at an evaluation set's tasks never enter the training data.

An attempt is dropped when its instance id is one of the set's, or when its task's problem statement
is, once whitespace is collapsed and case folded, the same text as one of theirs (the same issue under
another id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass
class EvalSet:
    ids: set[str] = field(default_factory=set)
    problems: set[str] = field(default_factory=set)

    def contains(self, attempt: dict[str, Any]) -> bool:
        problem = str(attempt.get("problem") or "")
        return attempt["instance_id"] in self.ids or (
            bool(problem.strip()) and normalise(problem) in self.problems
        )


def task_ids(path: Path) -> EvalSet:
    """Instance ids and problem statements of a tasks file (.json list or .jsonl) to keep out."""
    text = path.read_text(encoding="utf-8")
    rows = (
        json.loads(text)
        if path.suffix == ".json"
        else [json.loads(x) for x in text.splitlines() if x.strip()]
    )
    found = EvalSet()
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict) and "instance_id" in r:
            found.ids.add(str(r["instance_id"]))
            if isinstance(r.get("problem_statement"), str) and r["problem_statement"].strip():
                found.problems.add(normalise(r["problem_statement"]))
    return found
