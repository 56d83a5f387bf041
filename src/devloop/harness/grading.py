"""Grade one patch on one task: environment, tree at base, patch, test patch, tests, log, verdict."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devloop.harness.diffs import test_directives, touched_paths
from devloop.harness.envs import EnvError, EnvironmentManager
from devloop.harness.log_parsers import parse_log
from devloop.harness.source import SourceError, apply_patch, extract, reset_to_base
from devloop.harness.verdict import Category, Resolution, Verdict, grade_statuses
from devloop.tasks.model import Task

DEFAULT_TEST_TIMEOUT = 1800.0

NO_ENVIRONMENT = (
    "the record has no `environment` (python, pip pins, install, test_cmd, log_parser), "
    "so it cannot be graded without Docker; add one to the record"
)


@dataclass
class ShellResult:
    exit_code: int | None
    timed_out: bool
    duration_s: float


def run_shell(command: str, *, cwd: Path, env: dict[str, str], timeout: float, log: Path) -> ShellResult:
    """Run `command` with bash in its own process group, output (both streams) appended to `log`.
    On timeout the whole group is killed."""
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"$ {command}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code: int | None = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
        finally:
            # Also reaps background processes the command left behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return ShellResult(code, timed_out, time.monotonic() - started)


class _Stop(Exception):
    """Ends grading early with a verdict category and a one-line message."""

    def __init__(self, category: Category, message: str):
        super().__init__(message)
        self.category = category
        self.message = message


def grade(
    task: Task,
    patch: str,
    *,
    env_manager: EnvironmentManager,
    mirrors: Path | None,
    workdir: Path,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    log_dir: Path | None = None,
) -> Verdict:
    """Grade `patch` on `task` with the official SWE-bench rules, without Docker. Never raises.

    Steps: the cached venv for `task.environment` (cloned into `workdir`), the tree at base_commit
    extracted into `workdir/tree`, the install command, the model patch (git apply, git apply --reject,
    patch --fuzz=5), test files reset to base and test_patch applied, then `test_cmd` plus the test
    files under `test_timeout`; the log is parsed and graded. Logs go to `log_dir` (default `workdir`).
    """
    log_dir = log_dir or workdir
    log_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    verdict = Verdict(instance_id=task.instance_id, category=Category.ERROR)
    started = time.monotonic()
    try:
        _grade(task, patch, env_manager, mirrors, workdir, test_timeout, log_dir, verdict)
    except _Stop as stop:
        verdict.category, verdict.message = stop.category, stop.message
    except Exception as exc:  # a verdict, never a crash of the run
        verdict.category = Category.ERROR
        verdict.message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    verdict.timings["total"] = round(time.monotonic() - started, 3)
    return verdict


def _phase(verdict: Verdict, name: str, since: float) -> float:
    now = time.monotonic()
    verdict.timings[name] = round(now - since, 3)
    return now


def _grade(
    task: Task,
    patch: str,
    env_manager: EnvironmentManager,
    mirrors: Path | None,
    workdir: Path,
    test_timeout: float,
    log_dir: Path,
    verdict: Verdict,
) -> None:
    if not patch.strip():
        raise _Stop(Category.EMPTY_PATCH, "the prediction has no patch")
    (log_dir / "model.patch").write_text(patch, encoding="utf-8")
    spec = task.environment
    if spec is None:
        raise _Stop(Category.ENV_ERROR, NO_ENVIRONMENT)
    t = time.monotonic()
    try:
        venv = env_manager.venv_for(spec)
    except EnvError as exc:
        if exc.log:
            (log_dir / "env_build.log").write_text(exc.log, encoding="utf-8")
            verdict.logs["env_build"] = "env_build.log"
        raise _Stop(Category.ENV_ERROR, exc.message) from None
    t = _phase(verdict, "env", t)

    tree = workdir / "tree"
    try:
        extract(task, mirrors, tree)
    except SourceError as exc:
        raise _Stop(Category.ERROR, str(exc)) from None
    t = _phase(verdict, "extract", t)

    instance_venv = env_manager.clone(venv, workdir / "venv")
    env = env_manager.env_vars(instance_venv, spec)
    t = _phase(verdict, "clone", t)
    if spec.install:
        install_log = log_dir / "install.log"
        install_log.unlink(missing_ok=True)
        verdict.logs["install"] = install_log.name
        result = run_shell(spec.install, cwd=tree, env=env, timeout=test_timeout, log=install_log)
        t = _phase(verdict, "install", t)
        if result.timed_out:
            raise _Stop(Category.ENV_ERROR, f"the install command timed out after {test_timeout:g} s")
        if result.exit_code != 0:
            raise _Stop(
                Category.ENV_ERROR, f"the install command failed (exit {result.exit_code}); see install.log"
            )

    applied = apply_patch(tree, patch)
    (log_dir / "patch_apply.log").write_text(applied.log, encoding="utf-8")
    verdict.logs["patch"] = "patch_apply.log"
    if not applied.applied:
        raise _Stop(
            Category.PATCH_APPLY_FAILED, "git apply, git apply --reject and patch --fuzz=5 all failed"
        )
    verdict.patch_applied_with = applied.method

    if task.test_patch.strip():
        reset_to_base(task, mirrors, tree, touched_paths(task.test_patch))
        test_applied = apply_patch(tree, task.test_patch, fallbacks=False)
        if not test_applied.applied:
            (log_dir / "test_patch_apply.log").write_text(test_applied.log, encoding="utf-8")
            raise _Stop(Category.ERROR, "the test patch did not apply on the reset test files")
    t = _phase(verdict, "apply", t)

    command = " ".join([spec.test_cmd, *test_directives(task.test_patch, task.repo)])
    test_log = log_dir / "test_output.txt"
    test_log.unlink(missing_ok=True)
    verdict.logs["test"] = test_log.name
    result = run_shell(command, cwd=tree, env=env, timeout=test_timeout, log=test_log)
    verdict.timings["tests"] = round(result.duration_s, 3)
    t = time.monotonic()
    if result.timed_out:
        raise _Stop(Category.TIMEOUT, f"the tests ran past --test-timeout ({test_timeout:g} s)")

    statuses = parse_log(test_log.read_text(encoding="utf-8", errors="replace"), spec.log_parser)
    resolution, verdict.tests_status, verdict.tests = grade_statuses(
        task.FAIL_TO_PASS, task.PASS_TO_PASS, statuses
    )
    verdict.resolution = resolution
    verdict.extra["test_exit_code"] = result.exit_code
    verdict.category = Category.RESOLVED if resolution == Resolution.FULL else Category.UNRESOLVED
    if resolution != Resolution.FULL:
        failed = verdict.tests_status.FAIL_TO_PASS["failure"] + verdict.tests_status.PASS_TO_PASS["failure"]
        verdict.message = f"{len(failed)} listed test(s) failed or missing: {', '.join(failed[:3])}" + (
            ", ..." if len(failed) > 3 else ""
        )
    _phase(verdict, "parse", t)
