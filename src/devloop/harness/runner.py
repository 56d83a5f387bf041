"""`run_eval`: grade predictions (or an agent's patches) on many tasks, in parallel, resumably."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console

from devloop.harness.envs import EnvError, EnvironmentManager
from devloop.harness.grading import DEFAULT_TEST_TIMEOUT, NO_ENVIRONMENT, grade
from devloop.harness.source import extract
from devloop.harness.store import Report, RunStore
from devloop.harness.taskbox import TaskBox, grading_sandbox
from devloop.harness.ui import EvalProgress, print_summary
from devloop.harness.verdict import Category, Verdict
from devloop.runtime.lifetime import worker_pool
from devloop.runtime.limits import Limits
from devloop.tasks.model import Prediction, Task

Agent = Callable[[Task, Path, dict[str, str], Path], str]
"""`(task, workdir, env, out_dir) -> patch`: solve the task in `workdir` (a git repository at base_commit,
its package installed in the task's venv) with `env` (the venv on PATH, and when sandboxed nothing else of
this process's environment); write the run into `out_dir`."""


@dataclass(frozen=True)
class RunnerSettings:
    store_root: Path
    run_id: str
    cache_dir: Path | None
    mirrors: Path | None
    test_timeout: float
    keep_workdirs: bool
    model_name: str
    sandbox: str = "auto"
    """Where install and test commands run: "bwrap", "none" (unconfined), or "auto"."""
    limits: Limits | None = None
    """The sandbox's per-command limits (the agent's)."""


@functools.cache
def env_manager(cache_dir: Path | None) -> EnvironmentManager:
    # One per process, so interpreter look-ups are made once per worker.
    return EnvironmentManager(cache_dir)


def prepare_agent_tree(
    task: Task, settings: RunnerSettings, workdir: Path, out_dir: Path
) -> tuple[Path, dict[str, str]]:
    """The agent's working copy: the tree at base as a one-commit git repository, with the task's
    venv (cloned) on PATH and the install command run in it, in the sandbox (as grading does)."""
    manager = env_manager(settings.cache_dir)
    spec = task.environment
    assert spec is not None
    venv = manager.venv_for(spec)
    box = TaskBox(workdir, sandbox=settings.sandbox, limits=settings.limits, tree="repo")
    tree = extract(task, settings.mirrors, box.tree)
    git = [
        "git",
        "-c",
        "user.name=devloop",
        "-c",
        "user.email=devloop@localhost",
        "-c",
        "core.hooksPath=/dev/null",
    ]
    # The tree is the mirror's, nothing model-written yet: the only point where host git may touch it.
    for args in (
        ["init", "-q"],
        ["add", "-A", "-f"],
        ["commit", "-q", "--no-verify", "-m", f"base {task.base_commit}"],
    ):
        subprocess.run([*git, *args], cwd=tree, check=True, capture_output=True)
    env = box.prepare_env(manager, venv, spec)
    if spec.install:
        with box:
            result = box.run(spec.install, timeout=settings.test_timeout, log=out_dir / "agent_install.log")
        if result.exit_code != 0:
            raise EnvError(f"the install command failed in the agent's tree (exit {result.exit_code})")
    return tree, env


def evaluate_instance(
    task: Task, patch: str | None, agent: Agent | None, settings: RunnerSettings
) -> Verdict:
    """Produce (agent) or take (prediction) the patch, grade it, and write the verdict. Never raises."""
    store = RunStore(settings.store_root, settings.run_id)
    out_dir = store.instance_dir(task.instance_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"devloop-{task.instance_id[:40]}-"))
    timings: dict[str, float] = {}
    try:
        if patch is None and agent is not None:
            previous = store.read_prediction(task.instance_id)
            if previous is not None:
                patch = previous.model_patch
            elif task.environment is None:
                return _finish(store, Verdict(instance_id=task.instance_id, category=Category.ENV_ERROR,
                                              message=NO_ENVIRONMENT))  # fmt: skip
            else:
                started = time.monotonic()
                try:
                    tree, env = prepare_agent_tree(task, settings, workdir / "agent", out_dir)
                except EnvError as exc:
                    return _finish(store, Verdict(instance_id=task.instance_id, category=Category.ENV_ERROR,
                                                  message=exc.message))  # fmt: skip
                patch = agent(task, tree, env, out_dir / "agent")
                timings["agent"] = round(time.monotonic() - started, 3)
        patch = patch or ""
        store.write_prediction(Prediction(instance_id=task.instance_id, model_name_or_path=settings.model_name,
                                          model_patch=patch))  # fmt: skip
        verdict = grade(
            task, patch, env_manager=env_manager(settings.cache_dir), mirrors=settings.mirrors,
            workdir=workdir / "grade", test_timeout=settings.test_timeout, log_dir=out_dir,
            sandbox=settings.sandbox, limits=settings.limits,
        )  # fmt: skip
        verdict.timings.update(timings)
        return _finish(store, verdict)
    except Exception as exc:  # an agent or setup failure is this instance's verdict, not the run's end
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return _finish(store, Verdict(instance_id=task.instance_id, category=Category.ERROR, message=message))
    finally:
        if not settings.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def _finish(store: RunStore, verdict: Verdict) -> Verdict:
    store.write_verdict(verdict)
    return verdict


def default_run_id() -> str:
    """A fresh run id: the local date and time."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def run_eval(
    tasks: Sequence[Task],
    *,
    predictions: Mapping[str, Prediction] | None = None,
    agent: Agent | None = None,
    workers: int = 1,
    run_id: str | None = None,
    output: Path = Path("devloop-runs"),
    cache_dir: Path | None = None,
    mirrors: Path | None = None,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    progress: bool = True,
    keep_workdirs: bool = False,
    model_name: str | None = None,
    console: Console | None = None,
    sandbox: str = "auto",
    limits: Limits | None = None,
) -> Report:
    """Grade every task and write `<output>/<run_id>/report.json`; returns the report.

    Give exactly one of `predictions` (by instance id; tasks without one are reported incomplete) or
    `agent` (called per task, see `Agent`). Instances that already have a verdict under the same run id are
    skipped, so an interrupted run resumes where it stopped. `workers > 1` uses a process pool (an `agent`
    must then be picklable: a module-level function or a functools.partial of one). `progress` shows a
    rich progress bar and the summary table. `sandbox` and `limits`: where the install and test
    commands run (see grade); run.json records it, and "none" is marked in every verdict.
    """
    if (predictions is None) == (agent is None):
        raise ValueError("run_eval needs exactly one of predictions= or agent=")
    sandbox, warning = grading_sandbox(sandbox)  # resolved once, not per worker
    if warning and progress:
        (console or Console(stderr=True)).print(warning, markup=False, highlight=False)
    started = time.monotonic()
    run_id = run_id or default_run_id()
    store = RunStore(Path(output), run_id)
    store.root.mkdir(parents=True, exist_ok=True)
    if model_name is None:
        names = {p.model_name_or_path for p in (predictions or {}).values()}
        model_name = names.pop() if len(names) == 1 else ("agent" if agent else "predictions")
    settings = RunnerSettings(Path(output), run_id, Path(cache_dir) if cache_dir else None,
                              Path(mirrors) if mirrors else None, test_timeout, keep_workdirs, model_name,
                              sandbox, limits)  # fmt: skip
    store.write_meta({"run_id": run_id, "model_name_or_path": model_name, "tasks": len(tasks), "workers": workers,
                      "test_timeout": test_timeout, "mirrors": str(mirrors) if mirrors else None,
                      "grading_sandbox": sandbox})  # fmt: skip
    done = store.done_ids()
    jobs: list[tuple[Task, str | None]] = []
    for task in tasks:
        if task.instance_id in done:
            continue
        if predictions is not None:
            if task.instance_id not in predictions:
                continue
            jobs.append((task, predictions[task.instance_id].model_patch))
        else:
            jobs.append((task, None))

    with EvalProgress(len(jobs), enabled=progress, console=console) as bar:
        if workers <= 1:
            for task, patch in jobs:
                bar.advance(evaluate_instance(task, patch, agent, settings))
        else:
            _run_pool(jobs, agent, settings, workers, bar)
    report = store.write_report([t.instance_id for t in tasks], time.monotonic() - started)
    if progress:
        print_summary(report, console)
    return report


def _run_pool(jobs: list[tuple[Task, str | None]], agent: Agent | None, settings: RunnerSettings,
              workers: int, bar: EvalProgress) -> None:  # fmt: skip
    store = RunStore(settings.store_root, settings.run_id)
    with worker_pool(min(workers, max(1, len(jobs)))) as pool:  # its workers die with this process
        futures: dict[Future[Verdict], Task] = {
            pool.submit(evaluate_instance, task, patch, agent, settings): task for task, patch in jobs
        }
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        verdict = future.result()
                    except BrokenProcessPool:
                        continue  # a worker died (killed, out of memory): left without a verdict, for resume
                    except Exception as exc:  # e.g. an agent that cannot be pickled
                        task = futures[future]
                        verdict = Verdict(
                            instance_id=task.instance_id,
                            category=Category.ERROR,
                            message=f"worker failed: {type(exc).__name__}: {exc}".splitlines()[0],
                        )
                        store.write_verdict(verdict)
                    bar.advance(verdict)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def cpu_workers() -> int:
    """A sensible default for --workers: the CPUs this process may use, minus one."""
    return max(1, len(os.sched_getaffinity(0)) - 1)
