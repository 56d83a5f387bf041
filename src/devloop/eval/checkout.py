"""A task's working tree: the tree at base_commit in a TaskBox, the task's venv cloned in, install run.

Grading, best-of's visible tests and the agent's tree all start this way; only what they do after
differs (apply and test, test, or hand the tree to the agent).
"""

from __future__ import annotations

import functools
import subprocess
import time
from pathlib import Path

from devloop.eval.envs import EnvError, EnvironmentManager
from devloop.eval.source import extract_keeping
from devloop.eval.taskbox import TaskBox
from devloop.parse.diffs import touched_paths
from devloop.tasks.model import Task

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


class InstallFailed(EnvError):
    """The task's install command failed or timed out; the message says which and where."""


@functools.cache
def env_manager(cache_dir: Path | None) -> EnvironmentManager:
    """One per process, so interpreter look-ups are made once per worker."""
    return EnvironmentManager(cache_dir)


def _phase(timings: dict[str, float] | None, name: str, since: float) -> float:
    now = time.monotonic()
    if timings is not None:
        timings[name] = round(now - since, 3)
    return now


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
) -> dict[str, str]:
    """Build (or reuse) the task's venv, extract the tree at base into `box.tree`, clone the venv into the
    box and run the install command there; return the environment the task's commands get.

    `commit_base`: make the tree a one-commit git repository first (the agent's tree: its patch is
    `git diff` against it). `timings` gets env, extract, clone and install seconds. Raises EnvError (the
    venv; its `log` holds the build log), SourceError (the repository or commit), or InstallFailed
    (message ending in `where`, e.g. " in the agent's tree").
    """
    spec = task.environment
    if spec is None:
        raise EnvError(NO_ENVIRONMENT)
    t = time.monotonic()
    venv = manager.venv_for(spec)
    t = _phase(timings, "env", t)
    # The test files as they are at base, for grading to put back after the model's patch.
    box.base_files = extract_keeping(task, mirrors, box.tree, touched_paths(task.test_patch))[1]
    if commit_base:
        # The tree is the mirror's, nothing model-written yet: the only point where host git may touch it.
        for args in (
            ["init", "-q"],
            ["add", "-A", "-f"],
            ["commit", "-q", "--no-verify", "-m", f"base {task.base_commit}"],
        ):
            subprocess.run([*_BASE_GIT, *args], cwd=box.tree, check=True, capture_output=True)
    t = _phase(timings, "extract", t)
    env = box.prepare_env(manager, venv, spec)
    t = _phase(timings, "clone", t)
    if spec.install:
        install_log.unlink(missing_ok=True)
        result = box.run(spec.install, timeout=timeout, log=install_log)
        _phase(timings, "install", t)
        if result.timed_out:
            raise InstallFailed(f"the install command timed out after {timeout:g} s{where}")
        if result.exit_code != 0:
            raise InstallFailed(
                f"the install command failed{where} (exit {result.exit_code}); see {install_log.name}"
            )
    return env
