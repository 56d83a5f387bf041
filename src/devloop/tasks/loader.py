"""Load task records from .json (list, or dict by id) and .jsonl, with `file:line: field: problem` errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from devloop.tasks.model import Task
from devloop.tasks.safety import shown

_DECODER = json.JSONDecoder()
# json's decoder recurses per nesting level; a hostile file must get this line, not a RecursionError.
_TOO_DEEP = "nested too deeply"

M = TypeVar("M", bound=BaseModel)


class TaskLoadError(Exception):
    """A task or prediction file cannot be used; the message is one line naming file, line and field."""


@dataclass
class LoadResult:
    """The records that loaded, and one `file:line: field: problem` line per record skipped."""

    tasks: list[Task]
    skipped: list[str] = field(default_factory=list)


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _json_error(path: Path, text: str, exc: json.JSONDecodeError) -> TaskLoadError:
    return TaskLoadError(f"{path}:{_line_of(text, exc.pos)}: json: {exc.msg}")


def iter_records(path: Path) -> Iterator[tuple[int, str | None, Any]]:
    """Yield (line, key, value) for each top-level record of a .json list/dict or a .jsonl file.

    `key` is the dict key for a .json dict by id, else None. A .jsonl line that is not JSON is yielded
    as a `json.JSONDecodeError` value so the caller can skip it; a broken .json file raises TaskLoadError.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskLoadError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield number, None, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, exc
            except RecursionError:
                yield number, None, json.JSONDecodeError(_TOO_DEEP, line, 0)
        return
    # A .json file: walk the top-level container with raw_decode so every record keeps its line number.
    index = _skip_ws(text, 0)
    if index >= len(text) or text[index] not in "[{":
        raise TaskLoadError(f"{path}:{_line_of(text, index)}: json: expected a list or an object of records")
    is_dict = text[index] == "{"
    closing = "}" if is_dict else "]"
    index = _skip_ws(text, index + 1)
    first = True
    try:
        while True:
            if index < len(text) and text[index] == closing:
                return
            if not first:
                if index >= len(text) or text[index] != ",":
                    raise json.JSONDecodeError(f"expected ',' or '{closing}'", text, index)
                index = _skip_ws(text, index + 1)
            first = False
            key = None
            if is_dict:
                key, index = _DECODER.raw_decode(text, index)
                index = _skip_ws(text, index)
                if index >= len(text) or text[index] != ":":
                    raise json.JSONDecodeError("expected ':'", text, index)
                index = _skip_ws(text, index + 1)
            start = index
            try:
                value, index = _DECODER.raw_decode(text, index)
            except RecursionError:
                raise json.JSONDecodeError(_TOO_DEEP, text, start) from None
            yield _line_of(text, start), key, value
            index = _skip_ws(text, index)
    except json.JSONDecodeError as exc:
        raise _json_error(path, text, exc) from None


def describe_validation_error(exc: ValidationError) -> str:
    """`field: problem` for the first error, with the count of the others."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        problem = "missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {problem}{more}"


def parse_records(path: Path, model: type[M], *, id_field: str, strict: bool) -> tuple[list[M], list[str]]:
    """Validate every record of `path` as `model`; bad ones are skipped (or fatal when strict)."""
    items: list[M] = []
    skipped: list[str] = []
    seen: dict[str, int] = {}

    def reject(line: int, message: str) -> None:
        entry = f"{path}:{line}: {message}"
        if strict:
            raise TaskLoadError(entry)
        skipped.append(entry)

    for line, key, value in iter_records(path):
        if isinstance(value, json.JSONDecodeError):
            reject(line, f"json: {value.msg}")
            continue
        if not isinstance(value, dict):
            reject(line, f"record: expected an object, got {type(value).__name__}")
            continue
        if key is not None:
            value = {id_field: key, **value}
            if value[id_field] != key:
                reject(
                    line, f"{id_field}: {shown(str(value[id_field]))} differs from its key {shown(str(key))}"
                )
                continue
        try:
            item = model.model_validate(value)
        except ValidationError as exc:
            reject(line, describe_validation_error(exc))
            continue
        ident = getattr(item, id_field)
        if ident in seen:
            reject(line, f"{id_field}: duplicate of line {seen[ident]}")
            continue
        seen[ident] = line
        items.append(item)
    return items, skipped


def load_tasks(path: str | Path, *, strict: bool = False) -> LoadResult:
    """Load SWE-bench-format task records from a .json (list or dict by id) or .jsonl file.

    A bad record is reported as `file:line: field: problem` in `skipped` (or raises TaskLoadError when
    `strict`); besides the schema, that covers an `instance_id` that is not one plain path component and a
    patch naming an unsafe path (see `devloop.tasks.safety`). A relative `repo_path` is resolved against
    the file's directory.
    """
    path = Path(path)
    if path.suffix not in (".json", ".jsonl"):
        raise TaskLoadError(f"{path}: tasks must be a .json or .jsonl file")
    if not path.is_file():
        raise TaskLoadError(f"{path}: no such file")
    tasks, skipped = parse_records(path, Task, id_field="instance_id", strict=strict)
    for task in tasks:
        if task.repo_path is not None and not task.repo_path.is_absolute():
            task.repo_path = (path.parent / task.repo_path).resolve()
    return LoadResult(tasks=tasks, skipped=skipped)


def load_suite(name: str, cache_dir: Path) -> list[Task]:
    """The tasks of a built-in suite; only "builtin" exists. Its repositories are materialised in cache_dir."""
    if name != "builtin":
        raise TaskLoadError(f"unknown suite {name!r}: the only suite is 'builtin'")
    from devloop.suite import materialize_builtin  # lazy: the suite builds repositories on import use

    tasks = []
    for number, record in enumerate(materialize_builtin(Path(cache_dir)), 1):
        try:
            tasks.append(Task.model_validate(record))
        except ValidationError as exc:
            raise TaskLoadError(f"suite builtin: record {number}: {describe_validation_error(exc)}") from None
    return tasks
