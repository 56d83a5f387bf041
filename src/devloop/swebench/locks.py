"""A repository's requirements at `environment_setup_commit`, resolved once into a stored lock.

The official images install `pip install -r <file>` from the repository at the setup commit, at the time
the images were built. devloop reads the same file from the mirror (git plumbing with the isolated
configuration: no repository config, attributes or hooks; a blob is read, nothing is checked out),
expands it the official way (`requirements.expand_requirements`), layers the spec's pins over it, and
resolves the whole list with `uv pip compile --exclude-newer EXCLUDE_NEWER`. The resolved pins are stored
under the cache, keyed by everything that went in, so a second load gives the same pins without the
network and the environment's cache key (a hash of its pins) stays put. What the tree declares about
itself (name, version, requirements) is read by `declared`, through the install's sed edits (`sed`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from devloop.eval.envs import EnvError, EnvironmentManager, find_uv
from devloop.eval.source import SourceError, find_repository
from devloop.swebench.declared import (
    ProjectStandIn,
    install_extras,
    project_name,
    project_requires,
    scm_version,
)
from devloop.swebench.environments import SwebenchEnvironment
from devloop.swebench.requirements import _constrains, _name, expand_requirements, layer, requirement_lines
from devloop.swebench.sed import edited_reader
from devloop.swebench.specs import table
from devloop.tasks.model import Task
from devloop.workspace import WorkspaceError, git

# About when the official SWE-bench images were built (swebench 2.x, mid 2024): nothing uploaded later
# can enter a lock, so the packages are the ones those images could have installed.
EXCLUDE_NEWER = "2024-07-01T00:00:00Z"


# Bump when the lock's format or resolution changes, so older stored locks are not reused.
LOCK_VERSION = 8


# An exact pin names its version whatever the date (the specs pin a few releases uploaded after
# EXCLUDE_NEWER, e.g. sphinx's tox==4.16.0): the cut-off is lifted for those packages alone.
_NO_CUTOFF = "2100-01-01T00:00:00Z"


_EXACT_PIN = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*[A-Za-z0-9.+!_-]+\s*(?:;.*)?$"
)


class LockError(Exception):
    """A requirements lock cannot be made; the message is one line naming the missing piece."""


def mirror_reader(
    repo: Path, commit: str, role: str = "environment_setup_commit"
) -> Callable[[str], str | None]:
    """`read(path)`: a file of `repo` at `commit`, or None when absent. Raises LockError naming the
    commit by `role` when it is not in the repository."""
    try:
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
    except WorkspaceError:
        raise LockError(f"{role} {commit[:12]} is not in {repo}") from None

    def read(path: str) -> str | None:
        try:  # `cat-file blob` applies no filter or textconv: the bytes as committed
            return git(repo, "cat-file", "blob", f"{commit}:{path}")
        except WorkspaceError:
            return None

    return read


def _key(requirements: Sequence[str], python: str, exclude_newer: str, index_args: Sequence[str]) -> str:
    blob = json.dumps(
        {
            "requirements": list(requirements),
            "python": python,
            "exclude_newer": exclude_newer,
            "index": list(index_args),
            "lock": LOCK_VERSION,
        }  # fmt: skip
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def exact_pins(requirements: Sequence[str]) -> list[str]:
    """The names `requirements` pin to one exact version (`name==1.2`, not `name==1.*`), sorted."""
    return sorted({m.group(1).lower() for line in requirements if (m := _EXACT_PIN.match(line))})


def _pins(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    """uv's first lines (what failed); for a package that failed to build, its name and the last line
    its build printed (the exception: `ImportError: cannot import name 'Feature'`), which names the cause."""
    lines = [line.strip() for line in proc.stderr.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("hint:", "help:"))]
    if not lines:
        return f"exit {proc.returncode}"
    printed = lines[3:]
    if "Failed to build" in lines[0] and printed and printed[-1] not in lines[:3]:
        # uv's `cause:` lines between say only that the build backend failed; the exception says why.
        return f"{lines[0]}: {printed[-1]}"
    return " ".join(lines[:3])


class Locker:
    """Makes and stores requirement locks under `cache_dir/requirement-locks` (the env cache's root).

    `index_args` are extra `uv pip compile` options (e.g. `--no-index --find-links DIR`), part of the key.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        manager: EnvironmentManager | None = None,
        exclude_newer: str = EXCLUDE_NEWER,
        index_args: Sequence[str] = (),
    ):
        self.dir = Path(cache_dir) / "requirement-locks"
        self.manager = manager or EnvironmentManager(cache_dir)
        self.exclude_newer = exclude_newer
        self.index_args = list(index_args)

    def lock(
        self, requirements: Sequence[str], python: str, project: ProjectStandIn | None = None
    ) -> list[str]:
        """The pins `uv pip compile` resolves `requirements` to for Python `python` (with `project`
        standing in for the tree being installed); stored, and read back from the store when the same
        inputs were resolved before. Raises LockError."""
        keyed = [*requirements, *(project.key() if project else [])]
        stored = self.dir / f"{_key(keyed, python, self.exclude_newer, self.index_args)}.txt"
        if stored.is_file():
            return _pins(stored.read_text(encoding="utf-8"))
        uv = find_uv()
        if uv is None:
            raise LockError("uv, which resolves the requirements file into a lock")
        try:
            interpreter = self.manager.python_for(python)
        except EnvError as exc:
            raise LockError(exc.message) from None
        cmd = [uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--python",
               str(interpreter), "--exclude-newer", self.exclude_newer, *self.index_args]  # fmt: skip
        for name in exact_pins(requirements):
            cmd += ["--exclude-newer-package", f"{name}={_NO_CUTOFF}"]
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        with tempfile.TemporaryDirectory(prefix="devloop-lock-") as scratch:
            lines = list(requirements)
            if project is not None:
                lines.append(project.write(Path(scratch)))
            proc = subprocess.run(
                cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, check=False
            )
        if proc.returncode != 0:
            raise LockError(f"a resolution of the requirements for Python {python}: {_failure(proc)}")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = stored.with_name(f".{stored.name}.{os.getpid()}")
        tmp.write_text(
            f"# uv pip compile --exclude-newer {self.exclude_newer}\n{proc.stdout}", encoding="utf-8"
        )
        os.replace(tmp, stored)
        return _pins(proc.stdout)

    def _lock_project(self, pins: list[str], project: ProjectStandIn | None, python: str) -> list[str]:
        """Resolve the pins with the project's own requirements: through its stand-in when it has a
        name and version (a dependency that needs another release of the project, such as a
        sphinxcontrib plugin needing Sphinx>=5, is then ruled out as pip rules it out), else joined to
        the pins, else layered over them where they conflict."""
        requires = list(project.requires) if project else []
        if project is not None and project.name and project.version:
            # The official install runs last: a pin the project's own constraints contradict gives way.
            constrained = {_name(r) for r in requires if _constrains(r)} - {None}
            for kept in (pins, [p for p in pins if _name(p) not in constrained]):
                try:
                    return [p for p in self.lock(kept, python, project) if not project.is_line(p)]
                except LockError:
                    continue
        try:
            return self.lock([*pins, *requires], python)
        except LockError:
            if not requires:
                raise
            return self.lock(layer(pins, requires), python)

    def scm_env(self, task: Task, mirrors: Path | None) -> dict[str, str]:
        """SETUPTOOLS_SCM_PRETEND_VERSION for the task's tree (see `scm_version`), or {}."""
        try:
            repo = find_repository(task, mirrors)
        except SourceError:
            return {}
        version = scm_version(repo, task.base_commit)
        return {"SETUPTOOLS_SCM_PRETEND_VERSION": version} if version else {}

    def environment_pins(
        self, task: Task, environment: SwebenchEnvironment, mirrors: Path | None
    ) -> list[str]:
        """The resolved pins of `environment`: its requirements file read from the task's mirror at the
        setup commit, its own pins layered over it, and under both the build backend and dependencies
        the pyproject.toml at base_commit names (installs run without build isolation: the sandbox has no network). Raises LockError
        naming what is missing."""
        source = environment.requirements
        paths = " or ".join(source.paths) if source is not None else ""
        try:
            repo = find_repository(task, mirrors)
        except SourceError as exc:
            if source is None:  # nothing to read: the official pins, resolved as they are
                return self.lock(environment.pip, environment.python)
            raise LockError(f"the requirements file ({paths}) from a mirror: {exc}") from None
        commit = (source.commit if source else None) or task.environment_setup_commit or task.base_commit
        read = mirror_reader(repo, commit)
        requirements: list[str] = []
        if source is not None:
            try:
                _, text = expand_requirements(read, source.paths, table().replace_requirements)
            except LookupError:
                raise LockError(f"the requirements file ({paths}) at {commit[:12]} in {repo}") from None
            requirements = requirement_lines(text)
        # What `pip install -e .` of the tree at base_commit asks for: its build backend and declared
        # dependencies (setup.py ones cannot be read without running it). Installed last officially, it
        # re-resolves what the pins leave unsatisfied: both constraints are kept when they agree, and
        # the project's replace a conflicting pin otherwise.
        pins = layer(requirements, environment.pip)
        if environment.install and "pip install" in environment.install and "pip" not in map(_name, pins):
            # The official image's pip is the one of its build date: pip 25 dropped the `setup.py
            # develop` fallback that `pip install -e .` of a setuptools<64 project (pylint 2.15) needs.
            pins = [*pins, "pip"]
        tree = edited_reader(mirror_reader(repo, task.base_commit, "base_commit"), environment.install)
        requires = project_requires(tree, install_extras(environment.install))
        stand_in = ProjectStandIn(
            name=project_name(tree), version=scm_version(repo, task.base_commit), requires=tuple(requires)
        )
        return self._lock_project(pins, stand_in, environment.python)
