"""Reading a run's outcome from its report.json (the SWE-bench harness report shape).

report.json's id lists are a documented contract, and the official SWE-bench harness writes the same shape,
so `devloop compare` reads them rather than the run's store: it compares runs made by any tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_NAME = "report.json"
# The id lists a report must carry; the tasks a run "ran" are their union.
REQUIRED_FIELDS = ("resolved_ids", "unresolved_ids", "empty_patch_ids", "error_ids")


@dataclass(frozen=True)
class RunReport:
    """The task outcomes of one evaluated run.

    A task listed as resolved counts as resolved even if a sloppy report also lists it elsewhere.
    """

    name: str
    resolved: frozenset[str]
    unresolved: frozenset[str]
    empty_patch: frozenset[str]
    error: frozenset[str]
    path: Path | None = None

    @property
    def ran(self) -> frozenset[str]:
        """Every task the run attempted, whatever its outcome."""
        return self.resolved | self.unresolved | self.empty_patch | self.error


RunSource = str | Path | Mapping[str, Any] | RunReport


def _id_list(data: Mapping[str, Any], field: str, where: str) -> frozenset[str]:
    if field not in data:
        raise ValueError(f"{where}: field '{field}' is missing")
    value = data[field]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        got = type(value).__name__ if not isinstance(value, list) else "a list with non-string items"
        raise ValueError(f"{where}: field '{field}' must be a list of task-id strings, got {got}")
    return frozenset(value)


def report_from_mapping(data: Any, *, name: str, where: str, path: Path | None = None) -> RunReport:
    """Validate a decoded report.json object; errors name `where` and the offending field."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    lists = {field: _id_list(data, field, where) for field in REQUIRED_FIELDS}
    return RunReport(
        name=name,
        resolved=lists["resolved_ids"],
        unresolved=lists["unresolved_ids"],
        empty_patch=lists["empty_patch_ids"],
        error=lists["error_ids"],
        path=path,
    )


def load_run(source: RunSource, *, name: str | None = None) -> RunReport:
    """A run from its directory, its report.json path, an already-decoded report, or a RunReport.

    Raises a one-line ValueError naming the path (and field) when the report is missing or invalid.
    """
    if isinstance(source, RunReport):
        return source
    if isinstance(source, Mapping):
        return report_from_mapping(source, name=name or "run", where=name or "report")
    path = Path(source)
    if path.is_dir():
        file = path / REPORT_NAME
        if not file.is_file():
            raise ValueError(f"{path}: no {REPORT_NAME} in this run directory")
        run_name = path.resolve().name
    elif path.is_file():
        file = path
        run_name = path.resolve().parent.name if path.name == REPORT_NAME else path.stem
    else:
        raise ValueError(f"{path}: no such run directory or report file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file}: cannot read report ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON ({exc})") from None
    return report_from_mapping(data, name=name or run_name or str(path), where=str(file), path=file)
