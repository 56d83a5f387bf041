"""Environments for records that have none: the official SWE-bench spec table, by (repo, version).

An official SWE-bench record carries no `environment`; `fill_environments` gives it the one the official
harness uses (`devloop.swebench.environment_for`). Where the table's environment needs something devloop
cannot reproduce, the task keeps no environment and `environment_missing` names each piece, so it grades
`env_error` with that reason instead of being graded in a quietly different environment.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from devloop.tasks.model import EnvironmentSpec, Task

if TYPE_CHECKING:
    from devloop.swebench.locks import Locker


@dataclass
class EnvironmentFill:
    """What `fill_environments` did: tasks given an official environment, and why others got none."""

    filled: int = 0
    overridden: int = 0
    """Tasks whose environment an `--environment-overrides` entry patched."""
    missing: Counter[str] = field(default_factory=Counter)
    """Each missing piece, with how many tasks lack it (a task can lack several)."""
    unfilled: int = 0

    def lines(self) -> list[str]:
        """One summary line, then one per missing piece (most frequent first)."""
        if not self.filled and not self.unfilled and not self.overridden:
            return []
        out = [
            f"{self.filled} task(s) got an environment from the official SWE-bench table; "
            f"{self.unfilled} cannot and will be graded env_error"
            + (f"; {self.overridden} patched by --environment-overrides" if self.overridden else "")
        ]
        out += [f"  {count} x {reason}" for reason, count in self.missing.most_common()]
        return out


def _unread_requirements(paths: Sequence[str]) -> str:
    # The table's environment installs a requirements file read from the repository at
    # environment_setup_commit; without it the environment would lack packages the official one has.
    return f"the requirements file ({' or '.join(paths)}) at environment_setup_commit, unread: no mirror to read it from"


def official_environment(
    task: Task, locker: Locker | None = None, mirrors: Path | None = None
) -> tuple[EnvironmentSpec | None, list[str]]:
    """The official environment of `task` as devloop's EnvironmentSpec, or None and the missing pieces.
    An environment that installs a requirements file needs `locker`, which reads it from the task's
    mirror (under `mirrors`, or its repo_path) and resolves it into pins."""
    from devloop.swebench import environment_for  # lazy: loads the spec table
    from devloop.swebench.host import NOTES_FIELD, reproduce_locale, unreproduced

    environment, missing = environment_for(task)
    if environment is None:
        return None, missing
    fields = environment.environment_fields()
    generated = reproduce_locale(fields, environment.host)
    setattr(task, NOTES_FIELD, unreproduced(environment.host, generated_locale=generated))
    if environment.requirements is not None and locker is None:
        return None, [_unread_requirements(environment.requirements.paths)]
    if locker is not None:
        from devloop.swebench.locks import LockError

        try:
            fields["pip"] = locker.environment_pins(task, environment, mirrors)
            # The tree comes from `git archive`, without .git: setuptools_scm (pytest, ...) is told the
            # version a clone would have.
            fields["env"] = {**locker.scm_env(task, mirrors), **fields["env"]}
        except LockError as exc:
            return None, [str(exc)]
    return EnvironmentSpec.model_validate(fields), []


class OverridesError(ValueError):
    """An environment-overrides file cannot be used; the message is one line naming file and entry."""


Overrides = dict[str, dict[str, Any]]


def load_overrides(path: Path) -> Overrides:
    """Read an overrides file: a JSON or TOML table keyed by instance id or `repo@version`, each entry a
    table of environment fields (python, pip, install, test_cmd, log_parser, env) to set."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OverridesError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise OverridesError(f"{path}: expected a table keyed by instance id or repo@version")
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise OverridesError(f"{path}: {key}: expected a table of environment fields")
        unknown = sorted(set(entry) - set(EnvironmentSpec.model_fields))
        if unknown:
            raise OverridesError(f"{path}: {key}: {unknown[0]}: not an environment field")
    return data


def _override_for(task: Task, overrides: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    for key in (task.instance_id, f"{task.repo}@{task.version}"):
        if key in overrides:
            return key, overrides[key]
    return None


def _table_fields(task: Task) -> dict[str, Any]:
    # An override stands in for what the table's environment lacks, so it patches that environment even
    # when pieces are missing (the user's entry supplies them); with no spec at all it must be complete.
    from devloop.swebench import map_spec

    environment, _ = map_spec(task.repo, task.version)
    return environment.environment_fields() if environment is not None else {}


def _apply_override(task: Task, key: str, patch: dict[str, Any], origin: str) -> None:
    base = task.environment.model_dump() if task.environment is not None else _table_fields(task)
    try:
        task.environment = EnvironmentSpec.model_validate({**base, **patch})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "environment"
        raise OverridesError(
            f"{origin}: {key}: {where}: {error['msg'].removeprefix('Value error, ')} (for {task.instance_id})"
        ) from None
    task.environment_missing = []


def fill_environments(
    tasks: Sequence[Task],
    overrides: Mapping[str, dict[str, Any]] | None = None,
    *,
    origin: str = "overrides",
    locker: Locker | None = None,
    mirrors: Path | None = None,
) -> EnvironmentFill:
    """Give every task without an `environment` its official one, in place; record why where none. An
    entry of `overrides` (by instance id, else `repo@version`) then patches the task's environment.
    Requirements files are read and locked with `locker` (see `official_environment`); without one, such
    tasks name the unread file. Raises OverridesError when a patched environment is not valid (`origin`
    names the file)."""
    fill = EnvironmentFill()
    for task in tasks:
        found = _override_for(task, overrides or {})
        if found is not None:
            _apply_override(task, *found, origin)
            fill.overridden += 1
            continue
        if task.environment is not None:
            continue
        environment, missing = official_environment(task, locker, mirrors)
        if environment is not None:
            task.environment = environment
            task.environment_missing = []
            fill.filled += 1
        else:
            task.environment_missing = missing
            fill.unfilled += 1
            fill.missing.update(missing)
    return fill
