"""Grade one patch on one task: environment, tree at base, patch, test patch, tests, log, verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from devloop.eval.checkout import NO_ENVIRONMENT, Staged, build_cache, check_out
from devloop.eval.envs import EnvError, EnvironmentManager
from devloop.eval.source import NoRepository, SourceError, reset_to_base
from devloop.eval.taskbox import UNCONFINED, TaskBox, grading_sandbox
from devloop.eval.verdict import Category, Resolution, Verdict, grade_log, parse_test_log
from devloop.parse.diffs import touched_paths
from devloop.runtime.limits import Limits
from devloop.swebench.directives import test_directives
from devloop.swebench.grading import Rules
from devloop.swebench.log_parsers import LogParseError
from devloop.tasks.model import Task
from devloop.tasks.safety import patch_problem

DEFAULT_TEST_TIMEOUT = 1800.0


def no_environment_message(task: Task) -> str:
    """Why `task` has no environment: the pieces the official table's environment needs that devloop
    cannot reproduce, when it was looked up there, else the generic reason."""
    if task.environment_missing:
        return "no environment from the official SWE-bench table: it needs " + "; ".join(
            task.environment_missing
        )
    return NO_ENVIRONMENT


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
    sandbox: str = "auto",
    limits: Limits | None = None,
    rules: Rules = "swebench4",
    builds: bool = True,
    staged: Staged | None = None,
    before_tests: Callable[[], object] | None = None,
) -> Verdict:
    """Grade `patch` on `task` with the official SWE-bench rules, without Docker. Never raises.

    Steps: the cached venv for `task.environment` (cloned into `workdir`), the tree at base_commit
    extracted into `workdir/tree`, the install command, the model patch (git apply, git apply --reject,
    patch --fuzz=5), test files reset to base and test_patch applied, then `test_cmd` plus the test
    files under `test_timeout`; the log is parsed and graded. Logs go to `log_dir` (default `workdir`).

    Every command runs in `sandbox` (see taskbox.py: "bwrap", "none", or "auto" for bwrap where it
    works) with `limits`; the verdict's `extra["sandbox"]` says which, and `extra["unconfined"]` warns
    when it was none. The log graded is devloop's copy, made once every sandboxed process is dead.
    `rules` picks the official grading rules (swebench4 or swebench5, see `devloop.swebench.grading`);
    `extra["grading"]` records them. The install step goes through the build cache unless `builds` is
    False (`extra["build_cache"]` says what it did; see builds.py).

    `staged`: this grading's box, its tree and venv already in place (see eval/prefetch.py; its
    `workdir` must be the box's); `extra["prefetched"]` is then true, its env, clone and extract timings
    are the staging's, and `total` counts only what came after. `before_tests` runs just before the
    tests start (the prefetch of the next grading).
    """
    log_dir = log_dir or workdir
    log_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    verdict = Verdict(instance_id=task.instance_id, category=Category.ERROR, extra={"grading": rules})
    if host_notes := (task.model_extra or {}).get("host_not_reproduced"):
        verdict.extra["host_not_reproduced"] = host_notes  # official host facts this machine lacks
    started = time.monotonic()
    try:
        name = grading_sandbox(sandbox)[0]
        verdict.extra["sandbox"] = name
        if name == "none":
            verdict.extra["unconfined"] = UNCONFINED
        if staged is not None:
            verdict.extra["prefetched"] = True
            verdict.timings.update(staged.timings)
        with staged.box if staged is not None else TaskBox(workdir, sandbox=name, limits=limits) as box:
            _grade(task, patch, env_manager, mirrors, box, test_timeout, log_dir, verdict, rules, builds,
                   staged.venv if staged is not None else None, before_tests)  # fmt: skip
    except _Stop as stop:
        verdict.category, verdict.message = stop.category, stop.message
    except Exception as exc:  # a verdict, never a crash of the run
        verdict.category = Category.ERROR
        verdict.message = f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        if staged is not None:  # ended whatever stopped the grading before its `with` (idempotent)
            staged.box.stop()
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
    box: TaskBox,
    test_timeout: float,
    log_dir: Path,
    verdict: Verdict,
    rules: Rules,
    builds: bool,
    staged: Path | None,
    before_tests: Callable[[], object] | None,
) -> None:
    if not patch.strip():
        raise _Stop(Category.EMPTY_PATCH, "the prediction has no patch")
    (log_dir / "model.patch").write_text(patch, encoding="utf-8")
    if (problem := patch_problem(patch)) is not None:  # one model's bad output fails only its own instance
        raise _Stop(Category.PATCH_APPLY_FAILED, f"the patch was not applied: {problem}")
    if task.environment is None:
        raise _Stop(Category.ENV_ERROR, no_environment_message(task))
    spec = task.environment
    install_log = log_dir / "install.log"
    if spec.install:
        verdict.logs["install"] = install_log.name
    try:
        check_out(task, box, env_manager, mirrors, timeout=test_timeout, install_log=install_log,
                  timings=verdict.timings, builds=build_cache(env_manager, builds), notes=verdict.extra,
                  staged=staged)  # fmt: skip
    except SourceError as exc:
        if isinstance(exc, NoRepository):
            verdict.extra["missing_repo"] = exc.repo
        raise _Stop(Category.ERROR, str(exc)) from None
    except EnvError as exc:
        if exc.log:
            (log_dir / "env_build.log").write_text(exc.log, encoding="utf-8")
            verdict.logs["env_build"] = "env_build.log"
        raise _Stop(Category.ENV_ERROR, exc.message) from None
    tree = box.tree
    t = time.monotonic()

    applied = box.apply(patch)
    (log_dir / "patch_apply.log").write_text(applied.log, encoding="utf-8")
    verdict.logs["patch"] = "patch_apply.log"
    if not applied.applied:
        raise _Stop(
            Category.PATCH_APPLY_FAILED, "git apply, git apply --reject and patch --fuzz=5 all failed"
        )
    verdict.patch_applied_with = applied.method

    if task.test_patch.strip():
        # No model code has run yet (install, git apply, patch), and the runtime ends each command's
        # processes with it: nothing in the sandbox moves while the host resets the test files.
        reset_to_base(task, mirrors, tree, touched_paths(task.test_patch), box.base_files)
        box.hand_over_tree()
        test_applied = box.apply(task.test_patch, fallbacks=False)
        if not test_applied.applied:
            (log_dir / "test_patch_apply.log").write_text(test_applied.log, encoding="utf-8")
            raise _Stop(Category.ERROR, "the test patch did not apply on the reset test files")
    t = _phase(verdict, "apply", t)

    command = " ".join([spec.test_cmd, *test_directives(task.test_patch, task.repo)])
    test_log = log_dir / "test_output.txt"
    test_log.unlink(missing_ok=True)
    verdict.logs["test"] = test_log.name
    if before_tests is not None:
        before_tests()
    result = box.run(command, timeout=test_timeout, log=test_log)
    box.stop()  # every process the tests started is dead before devloop reads (its copy of) their output
    verdict.timings["tests"] = round(result.duration_s, 3)
    if result.note:
        verdict.extra["tests_note"] = result.note
    t = time.monotonic()
    if result.timed_out:
        raise _Stop(Category.TIMEOUT, f"the tests ran past --test-timeout ({test_timeout:g} s)")

    log_text = test_log.read_text(encoding="utf-8", errors="replace")
    verdict.extra["test_exit_code"] = result.exit_code
    try:
        statuses = parse_test_log(log_text, spec.log_parser)
    except LogParseError as exc:
        raise _Stop(
            Category.ERROR,
            f"the {spec.log_parser} log parser cannot read the test log ({test_log.name}): {exc}",
        ) from None
    resolution, verdict.tests_status, verdict.tests, invalid = grade_log(
        task.FAIL_TO_PASS, task.PASS_TO_PASS, statuses, rules=rules, test_exit=result.exit_code, log=log_text
    )
    verdict.resolution = resolution
    verdict.category = Category.RESOLVED if resolution == Resolution.FULL else Category.UNRESOLVED
    if invalid is not None:
        verdict.extra["invalid"] = invalid
        verdict.message = f"the run is invalid under the {rules} rules: {invalid}"
    elif resolution != Resolution.FULL:
        failed = verdict.tests_status.FAIL_TO_PASS["failure"] + verdict.tests_status.PASS_TO_PASS["failure"]
        verdict.message = f"{len(failed)} listed test(s) failed or missing: {', '.join(failed[:3])}" + (
            ", ..." if len(failed) > 3 else ""
        )
    _phase(verdict, "parse", t)
