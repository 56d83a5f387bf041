"""The next attempt's tree, made while this one's tests run; an agent's grading tree, while it works.

Before its tests, a grading spends tens of milliseconds to seconds making the tree it tests: the
cached venv looked up (or, for a task that installs, cloned), the tree at base extracted from the
mirror, the sandbox booted around them. None of that depends on the instance before it, so while an
instance's tests run, the process that runs them stages the tree of the grading it is told comes next
(`AttemptJob.prefetch`, chosen by the scheduler). When that grading starts here it finds its box ready
and goes straight to its install step, or to the patch. When the next attempt is an agent's, what is
staged is the agent's tree (a one-commit repository, eval/checkout.py) and its venv, up to the install
step. And while an agent works, its own grading's box is staged (attempt.py, in bwrap only: the agent's
sandbox shows neither the temp dir nor the box), so that its grading goes straight to the patch.

What runs ahead is only the host's own work and an idle shell: no command of the next task (its
install step, its patch, its tests) starts before its turn, so a run never has more task commands
going at once than it has workers. A venv that is not built yet is not built ahead (that is a task's
worth of work, not a tree); the grading then does everything itself, as it does when the prefetched
tree is not the one it needs (another worker took that grading) or staging it failed (the grading
meets the same error itself and reports it).

Staging runs on one long-lived thread per process: a sandbox's parent-death signal is tied to the
thread that spawned it, so a thread that ended after staging would take the sandbox with it. A staged
box nobody claims is ended and its directory removed when the next grading starts, when the executor
closes, or when a pool worker exits.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing import util
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from devloop.eval.checkout import Staged, env_manager, stage_tree
from devloop.eval.taskbox import TaskBox, grading_sandbox
from devloop.runtime.later import remove_later
from devloop.runtime.stale import mark_owner

if TYPE_CHECKING:
    from devloop.eval.attempt import AttemptJob


Kind = Literal["grade", "agent"]
"""What a staging makes: a grading's box, or an agent's (its tree a one-commit repository, no install)."""


def job_id(job: AttemptJob, kind: Kind = "grade") -> tuple[str, str, int, str, str]:
    """What a staged tree must match: the run, the instance, the unit, the patch's (or the settings')
    fingerprint, and which box it is."""
    return (str(job.harness.store().root), job.task.instance_id, job.index, job.key, kind)


def workdir_for(job: AttemptJob) -> Path:
    """A fresh work dir for one attempt (removed by the next run if this one is killed, unless kept)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"devloop-{job.task.instance_id[:40]}-{job.index}-"))
    if not job.harness.keep_workdirs:
        mark_owner(workdir)
    return workdir


@dataclass
class Prefetched:
    """One staging: for `key`, in `workdir`; `staged` once ready (None: skipped or failed)."""

    key: tuple[str, str, int, str, str]
    workdir: Path
    box: TaskBox | None = None
    staged: Staged | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def discard(self) -> None:
        self.done.wait()
        if self.box is not None:
            with suppress(Exception):
                self.box.stop()
        remove_later(self.workdir)


def _stage(item: Prefetched, job: AttemptJob, kind: Kind = "grade") -> None:
    task, h = job.task, job.harness
    try:
        manager = env_manager(h.cache_dir)
        if task.environment is None or not manager.is_built(task.environment):
            return
        if kind == "agent":  # as attempt._solve makes it, up to its install step
            item.box = TaskBox(item.workdir / "agent", sandbox=h.sandbox, limits=h.limits, tree="repo")
        else:
            item.box = TaskBox(item.workdir / "grade", sandbox=grading_sandbox(h.sandbox)[0], limits=h.limits)
        timings: dict[str, float] = {}
        venv = stage_tree(task, item.box, manager, h.mirrors, timings=timings, commit_base=kind == "agent")
        item.staged = Staged(item.box, venv, timings)
    except Exception:  # the grading starts afresh and meets (and reports) the same problem itself
        item.staged = None
    finally:
        item.done.set()


class Prefetcher:
    """This process's staging: at most one tree ahead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._todo: queue.SimpleQueue[tuple[Prefetched, AttemptJob, Kind]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._owner = 0  # the pid that started _thread: a forked pool worker has none of its parent's
        self._ahead: Prefetched | None = None

    def start(self, job: AttemptJob, kind: Kind = "grade") -> None:
        """Stage `job`'s box of `kind` in the background. Never raises: without it, the attempt makes it."""
        with suppress(Exception):
            self.discard()
            item = Prefetched(job_id(job, kind), workdir_for(job))
            with self._lock:
                self._ahead = item
                if self._thread is None or self._owner != os.getpid():
                    self._thread = threading.Thread(target=self._work, name="devloop-prefetch", daemon=True)
                    self._owner = os.getpid()
                    self._thread.start()
                    # A pool worker ends what it staged for nobody when it exits.
                    util.Finalize(self, Prefetcher.discard, args=(self,), exitpriority=10)
            self._todo.put((item, job, kind))

    def claim(self, job: AttemptJob, kind: Kind = "grade") -> tuple[Staged, Path] | None:
        """`job`'s staged box of `kind` and its work dir, if that is what was staged here (anything else
        staged is ended); None when `job` must make its own."""
        with self._lock:
            item, self._ahead = self._ahead, None
        if item is None:
            return None
        item.done.wait()
        if item.key == job_id(job, kind) and item.staged is not None:
            return item.staged, item.workdir
        item.discard()
        return None

    def discard(self) -> None:
        """End whatever is staged (waiting for a staging under way), and remove its directory."""
        with self._lock:
            item, self._ahead = self._ahead, None
        if item is not None:
            item.discard()

    def _work(self) -> None:
        while True:
            item, job, kind = self._todo.get()
            try:
                _stage(item, job, kind)
            except Exception:  # _stage reports its own failures; anything else must not end the thread
                item.staged = None
            finally:
                item.done.set()  # a claim waits for it


PREFETCH = Prefetcher()
