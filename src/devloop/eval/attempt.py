"""The jobs an executor runs: one graded attempt (the agent's, or a given prediction's), or one best-of
selection.

Both are module-level functions of picklable arguments, so a process pool or Ray can ship them; both
write their record atomically into the run directory before returning it, and never raise.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devloop.config import RunSettings
from devloop.eval import best_of
from devloop.eval.checkout import Staged, build_cache, check_out, env_manager
from devloop.eval.envs import EnvError
from devloop.eval.grading import DEFAULT_TEST_TIMEOUT, grade, no_environment_message
from devloop.eval.prefetch import PREFETCH, workdir_for
from devloop.eval.records import Selection, UnitRecord, settings_key
from devloop.eval.solver import AgentOutcome, AgentSolver
from devloop.eval.source import NoRepository, SourceError
from devloop.eval.store import RunStore
from devloop.eval.taskbox import TaskBox, grading_sandbox
from devloop.eval.verdict import Category, Verdict
from devloop.runtime.later import remove_later
from devloop.runtime.limits import Limits
from devloop.swebench.grading import Rules
from devloop.tasks.model import Task


@dataclass(frozen=True)
class HarnessSettings:
    """Where the run lives and how grading runs: the same for every attempt of a run."""

    store_root: Path
    run_id: str
    cache_dir: Path | None = None
    mirrors: Path | None = None
    test_timeout: float = DEFAULT_TEST_TIMEOUT
    keep_workdirs: bool = False
    model_name: str = "agent"
    sandbox: str = "auto"
    """Where install and test commands run: "bwrap", "none" (unconfined), or "auto"."""
    limits: Limits | None = None
    """The sandbox's per-command limits (the agent's)."""
    grading: Rules = "swebench4"
    """The official grading rules (see `devloop.swebench.grading`)."""
    build_cache: bool = True
    """Whether install steps go through the build cache (False: --no-build-cache)."""

    def store(self) -> RunStore:
        return RunStore(self.store_root, self.run_id)


@dataclass(frozen=True)
class AttemptJob:
    """One unit. The agent solves the task with `settings` (already at the unit's temperature), or, when
    `patch` is given, that prediction is graded as it is."""

    task: Task
    index: int
    settings: RunSettings | None
    harness: HarnessSettings
    patch: str | None = None
    prefetch: AttemptJob | None = None
    """The grading this process is likely to run next: its tree is staged while this one's tests run
    (see eval/prefetch.py)."""
    stage_grading: bool = False
    """An agent's attempt: stage its own grading's box (the tree at base, the sandbox around it) while
    the agent works, when grading is confined (the model's sandbox cannot reach it)."""

    @property
    def key(self) -> str:
        """The fingerprint a resumed run matches the unit against (see records.settings_key)."""
        if self.settings is not None:
            return settings_key(self.settings.model_dump(mode="json"))
        return "prediction-" + hashlib.sha256((self.patch or "").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SelectJob:
    """Best-of's choice among a task's finished samples (index -> patch)."""

    task: Task
    patches: dict[int, str]
    harness: HarnessSettings


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _solve(job: AttemptJob, unit_dir: Path, workdir: Path, before_agent: Callable[[], object] | None = None,
           staged: Staged | None = None) -> AgentOutcome | Verdict:  # fmt: skip
    """Check out the agent's tree and run the agent; a Verdict when it could not run. `before_agent` runs
    once the tree is checked out (its venv built), as the agent starts. `staged`: the agent's box, its
    tree and venv already made (eval/prefetch.py); only the install step is left."""
    task, h = job.task, job.harness
    assert job.settings is not None
    if task.environment is None:
        return Verdict(
            instance_id=task.instance_id, category=Category.ENV_ERROR, message=no_environment_message(task)
        )
    box = staged.box if staged is not None else TaskBox(workdir / "agent", sandbox=h.sandbox, limits=h.limits,
                                                        tree="repo")  # fmt: skip
    try:
        with box:
            manager = env_manager(h.cache_dir)
            env = check_out(task, box, manager, h.mirrors, timeout=h.test_timeout,
                            install_log=unit_dir / "agent_install.log", commit_base=True,
                            where=" in the agent's tree", builds=build_cache(manager, h.build_cache),
                            staged=staged.venv if staged is not None else None)  # fmt: skip
    except (EnvError, SourceError) as exc:
        message = exc.message if isinstance(exc, EnvError) else str(exc)
        category = Category.ENV_ERROR if isinstance(exc, EnvError) else Category.ERROR
        verdict = Verdict(instance_id=task.instance_id, category=category, message=message)
        if isinstance(exc, NoRepository):
            verdict.extra["missing_repo"] = exc.repo
        return verdict
    if before_agent is not None:
        before_agent()
    solver = AgentSolver(job.settings, hide=(h.store_root, h.mirrors))
    return solver(task, box.tree, env, unit_dir / "agent", seed=box.git_seed)


def _confined(sandbox: str) -> bool:
    """Whether grading runs in bwrap, and so the agent's commands in a sandbox too (bwrap, or docker's
    container): only then is a tree staged in the temp dir during the agent's run out of the model's
    reach, since its sandbox shows only the system's paths and its own tree. A sandbox that cannot work
    is the grading's to report."""
    try:
        return grading_sandbox(sandbox)[0] == "bwrap"
    except ValueError:
        return False


def run_attempt(job: AttemptJob) -> UnitRecord:
    """Produce (agent) or take (prediction) the patch, grade it, and write the unit's record. Never raises."""
    task, h = job.task, job.harness
    store = h.store()
    unit_dir = store.unit_dir(task.instance_id, job.index)
    # A killed attempt leaves a partial directory (the trajectory appends): start it afresh.
    shutil.rmtree(unit_dir, ignore_errors=True)
    unit_dir.mkdir(parents=True)
    # What the previous attempt in this process staged for this one: its grading's box, or its agent's.
    claimed = PREFETCH.claim(job, "grade" if job.settings is None else "agent")
    staged, workdir = claimed if claimed is not None else (None, workdir_for(job))
    agent_box, staged = (staged, None) if job.settings is not None else (None, staged)
    grade_dir = workdir  # an agent's grading staged beside it has a work dir of its own
    ahead = job.prefetch
    before_tests = (
        None
        if ahead is None
        else (lambda: PREFETCH.start(ahead, "grade" if ahead.settings is None else "agent"))
    )
    started = time.monotonic()
    outcome = AgentOutcome(job.patch or "", None)
    beside = taken = False  # whether this attempt's grading is staged while its agent works; claimed
    try:
        beside = job.settings is not None and job.stage_grading and _confined(h.sandbox)
        # The base tree, whatever the agent's patch: staged while the agent works.
        stage = (lambda: PREFETCH.start(job)) if beside else None
        solved: AgentOutcome | Verdict = (
            outcome if job.settings is None else _solve(job, unit_dir, workdir, stage, agent_box)
        )
        if isinstance(solved, Verdict):
            verdict = solved
        elif solved.failed:
            outcome = solved
            verdict = Verdict(instance_id=task.instance_id, category=Category.AGENT_ERROR,
                              message=f"the agent stopped with {solved.exit_status}: {solved.reason}".splitlines()[0])  # fmt: skip
        else:
            outcome = solved
            agent_s = round(time.monotonic() - started, 3)
            if beside:
                taken, claimed = True, PREFETCH.claim(job)
                if claimed is not None:
                    staged, grade_dir = claimed
            verdict = grade(task, outcome.patch, env_manager=env_manager(h.cache_dir), mirrors=h.mirrors,
                            workdir=grade_dir / "grade", test_timeout=h.test_timeout, log_dir=unit_dir,
                            sandbox=h.sandbox, limits=h.limits, rules=h.grading, builds=h.build_cache,
                            staged=staged, before_tests=before_tests)  # fmt: skip
            if job.settings is not None:
                verdict.timings["agent"] = agent_s
        if agent_box is not None:
            verdict.extra["agent_prefetched"] = True  # its tree was made during the previous attempt's tests
    except Exception as exc:  # the attempt's outcome, not the run's end
        verdict = Verdict(instance_id=task.instance_id, category=Category.ERROR, message=_one_line(exc))
    finally:
        if beside and not taken:
            PREFETCH.discard()  # staged for a grading that did not come (the agent failed, or a crash)
        if not h.keep_workdirs:
            for made in {workdir, grade_dir}:
                remove_later(made)  # every process in it is dead: the sandbox ended with the tests
    settings = job.settings
    record = UnitRecord(
        instance_id=task.instance_id, index=job.index, temperature=settings.temperature if settings else 0.0,
        max_iterations=settings.max_iterations if settings else 0, settings_key=job.key,
        exit_status=outcome.exit_status, steps=outcome.steps, patch=outcome.patch, verdict=verdict,
        duration_s=round(time.monotonic() - started, 3),
    )  # fmt: skip
    store.write_unit(record)
    return record


def run_selection(job: SelectJob) -> Selection:
    """Choose among the task's candidates by visible tests and votes; write selection.json. Never raises."""
    h = job.harness
    store = h.store()
    try:
        selection = best_of.select(job.task, job.patches, manager=env_manager(h.cache_dir), mirrors=h.mirrors,
                                   test_timeout=h.test_timeout, log_dir=store.instance_dir(job.task.instance_id),
                                   keep_workdirs=h.keep_workdirs, sandbox=h.sandbox, limits=h.limits,
                                   builds=h.build_cache)  # fmt: skip
    except Exception as exc:  # no visible evidence: fall back to the vote alone
        selection = best_of.vote_only(job.task, job.patches, f"visible tests could not run: {_one_line(exc)}")
    store.write_selection(selection)
    return selection
