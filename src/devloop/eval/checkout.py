"""A task's working tree: the tree at base_commit in a TaskBox, the task's venv cloned in, install run.

Grading, best-of's visible tests and the agent's tree all start this way; only what they do after
differs (apply and test, test, or hand the tree to the agent).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.eval.builds import BuildCache
from devloop.eval.envs import EnvError, EnvironmentManager
from devloop.eval.source import BaseFiles, extract_keeping, pack_base_tree
from devloop.eval.taskbox import TaskBox
from devloop.parse.diffs import touched_paths
from devloop.tasks.model import Task
from devloop.workspace import GitSeed

NO_ENVIRONMENT = (
    "the record has no `environment` (python, pip pins, install, test_cmd, log_parser), "
    "so it cannot be graded without Docker; add one to the record"
)

_BASE_GIT = (
    "git",
    "-c",
    "user.name=devloop",
    "-c",
    "user.email=devloop@localhost",
    "-c",
    "core.hooksPath=/dev/null",
)


@dataclass
class Staged:
    """A box whose tree and venv `stage_tree` put in place ahead of its grading: `venv` is the cached
    venv it returned, `timings` its phases (env, clone, extract)."""

    box: TaskBox
    venv: Path
    timings: dict[str, float]


class InstallFailed(EnvError):
    """The task's install command failed or timed out; the message says which and where."""


@functools.cache
def env_manager(cache_dir: Path | None) -> EnvironmentManager:
    """One per process, so interpreter look-ups are made once per worker."""
    return EnvironmentManager(cache_dir)


def _phase(timings: dict[str, float], name: str, since: float) -> float:
    now = time.monotonic()
    timings[name] = round(now - since, 3)
    return now


def build_cache(manager: EnvironmentManager, enabled: bool = True) -> BuildCache | None:
    """The build cache beside `manager`'s venvs (`<cache-dir>/builds`), or None when `enabled` is False
    (--no-build-cache)."""
    return BuildCache(manager.cache_dir / "builds") if enabled else None


def check_out(
    task: Task,
    box: TaskBox,
    manager: EnvironmentManager,
    mirrors: Path | None,
    *,
    timeout: float,
    install_log: Path,
    timings: dict[str, float] | None = None,
    commit_base: bool = False,
    where: str = "",
    builds: BuildCache | None = None,
    notes: dict[str, Any] | None = None,
    staged: Path | None = None,
) -> dict[str, str]:
    """Build (or reuse) the task's venv, extract the tree at base into `box.tree`, clone the venv into the
    box and run the install command there (or restore what it left from `builds`, the build cache);
    return the environment the task's commands get.

    `commit_base`: make the tree a one-commit git repository first (the agent's tree: its patch is
    `git diff` against it). `timings` gets env, extract, clone and install (or build_cache_restore)
    seconds; `notes["build_cache"]` what the cache did (`off` without one). Raises EnvError (the venv;
    its `log` holds the build log), SourceError (the repository or commit), or InstallFailed (message
    ending in `where`, e.g. " in the agent's tree").

    `staged`: the cached venv `stage_tree` returned for this box, whose tree and venv are then already in
    place (a prefetched grading); only the install step is left.
    """
    spec = task.environment
    if spec is None:
        raise EnvError(NO_ENVIRONMENT)
    timings = {} if timings is None else timings
    venv = staged or stage_tree(task, box, manager, mirrors, timings=timings, commit_base=commit_base)
    if not spec.install:
        return box.env
    install = spec.install

    def run() -> None:
        started = time.monotonic()
        install_log.unlink(missing_ok=True)
        result = box.run(install, timeout=timeout, log=install_log)
        _phase(timings, "install", started)
        if result.timed_out:
            raise InstallFailed(f"the install command timed out after {timeout:g} s{where}")
        if result.exit_code != 0:
            raise InstallFailed(
                f"the install command failed{where} (exit {result.exit_code}); see {install_log.name}"
            )

    def refresh() -> None:  # a restore failed half-way: the install runs on a fresh tree and venv
        box.stop()
        for made in (box.tree, box.venv):
            shutil.rmtree(made, ignore_errors=True)
        _fresh_tree(task, box, manager, mirrors, venv, commit_base, {})

    if builds is None:
        if notes is not None:
            notes["build_cache"] = "off"
        run()
    else:
        builds.install(task, spec, manager.key(spec), box, git_tree=commit_base, run=run, refresh=refresh,
                       install_log=install_log, timings=timings, notes={} if notes is None else notes)  # fmt: skip
    return box.env


def stage_tree(task: Task, box: TaskBox, manager: EnvironmentManager, mirrors: Path | None, *,
               timings: dict[str, float] | None = None, commit_base: bool = False) -> Path:  # fmt: skip
    """check_out's first half: the venv (built if needed) and the tree at base in `box`, its sandbox
    started around them; no command of the task has run yet. Returns the cached venv. Raises as
    check_out does (EnvError, SourceError)."""
    spec = task.environment
    if spec is None:
        raise EnvError(NO_ENVIRONMENT)
    timings = {} if timings is None else timings
    t = time.monotonic()
    venv = manager.venv_for(spec)
    _phase(timings, "env", t)
    _fresh_tree(task, box, manager, mirrors, venv, commit_base, timings)
    return venv


def _fresh_tree(task: Task, box: TaskBox, manager: EnvironmentManager, mirrors: Path | None, venv: Path,
                commit_base: bool, timings: dict[str, float]) -> None:  # fmt: skip
    """The tree at base in `box.tree` (a one-commit repository with `commit_base`) and the venv in the box."""
    assert task.environment is not None
    t = time.monotonic()
    paths = touched_paths(task.test_patch)  # the test files at base, put back after the model's patch
    if box.confined and not commit_base:
        _extract_while_the_sandbox_starts(task, box, manager, mirrors, venv, paths, timings)
        return
    box.base_files = extract_keeping(task, mirrors, box.tree, paths)[1]
    if commit_base:
        box.git_seed = _commit_base(task, mirrors, box)
    t = _phase(timings, "extract", t)
    box.prepare_env(manager, venv, task.environment)
    _phase(timings, "clone", t)


def _commit_base(task: Task, mirrors: Path | None, box: TaskBox) -> GitSeed | None:
    """Make the extracted tree a one-commit repository, and return the seed a workspace on it starts from
    (None when the repository could not give the tree's objects).

    The tree is the mirror's, nothing model-written yet: the only point where host git may touch it. Its
    objects come from the mirror as one pack (the base tree's alone: no history, nothing of the fix), so
    `git add` only checks the files against them instead of writing one object file per file (on a
    django-sized tree, thousands of file creations). The pack and the index are also kept beside the
    tree (`base/`), the host's, for the agent's workspace to borrow: the copies in the tree's `.git` are
    the model's from its first command."""
    seed = box.workdir / "base"
    shutil.rmtree(seed, ignore_errors=True)  # a tree made again (a failed build-cache restore) packs again
    tree_id = pack_base_tree(task, mirrors, seed / "objects" / "pack")

    def git(*args: str) -> bytes:
        return subprocess.run([*_BASE_GIT, *args], cwd=box.tree, check=True, capture_output=True).stdout

    git("init", "-q")
    if tree_id is not None:
        packs = box.tree / ".git" / "objects" / "pack"
        packs.mkdir(parents=True, exist_ok=True)
        for made in (seed / "objects" / "pack").iterdir():
            shutil.copyfile(made, packs / made.name)
        git("read-tree", tree_id)  # the index names every file's object: `add` writes none it already has
    git("add", "-A", "-f")
    git("commit", "-q", "--no-verify", "-m", f"base {task.base_commit}")
    # A tree that is not the commit's as git archive wrote it (export-subst, export-ignore) has objects
    # the pack lacks: its workspace hashes its files itself.
    if tree_id is None or git("rev-parse", "HEAD^{tree}").decode().strip() != tree_id:
        return None
    shutil.copyfile(box.tree / ".git" / "index", seed / "index")
    return GitSeed(seed / "objects", seed / "index")


def _extract_while_the_sandbox_starts(task: Task, box: TaskBox, manager: EnvironmentManager,
                                      mirrors: Path | None, venv: Path, paths: list[str],
                                      timings: dict[str, float]) -> None:  # fmt: skip
    """_fresh_tree for a sandboxed box: the venv first (it is bound where the sandbox starts), then the
    sandbox spawned around the empty tree and the tree extracted here while it boots (its processes do
    the waiting, so no second thread contends for the interpreter). Nothing runs in the sandbox until
    the tree is written and handed over (and the disk limit's baseline taken again, so that the tree
    itself is not counted as the run's growth). An extraction error ends the half-started sandbox and
    comes first: a missing commit says more than a sandbox."""
    assert task.environment is not None
    t = time.monotonic()
    box.prepare_env(manager, venv, task.environment)
    t = _phase(timings, "clone", t)
    box.tree.mkdir(parents=True, exist_ok=True)
    kept: list[BaseFiles] = []
    box.start(while_starting=lambda: kept.append(extract_keeping(task, mirrors, box.tree, paths)[1]))
    box.base_files = kept[0]
    box.host_wrote_tree()
    _phase(timings, "extract", t)
