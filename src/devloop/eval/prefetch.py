"""The next grading's tree, made while this one's tests run.

Before its tests, a grading spends tens of milliseconds to seconds making the tree it tests: the
cached venv looked up (or, for a task that installs, cloned), the tree at base extracted from the
mirror, the sandbox booted around them. None of that depends on the instance before it, so while an
instance's tests run, the process that runs them stages the tree of the grading it is told comes next
(`AttemptJob.prefetch`, chosen by the scheduler). When that grading starts here it finds its box ready
and goes straight to its install step, or to the patch.

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
from typing import TYPE_CHECKING

from devloop.eval.checkout import Staged, env_manager, stage_tree
from devloop.eval.taskbox import TaskBox, grading_sandbox
from devloop.runtime.later import remove_later
from devloop.runtime.stale import mark_owner

if TYPE_CHECKING:
    from devloop.eval.attempt import AttemptJob


def job_id(job: AttemptJob) -> tuple[str, str, int, str]:
    """What a staged tree must match: the run, the instance, the unit and the patch's fingerprint."""
    return (str(job.harness.store().root), job.task.instance_id, job.index, job.key)


def workdir_for(job: AttemptJob) -> Path:
    """A fresh work dir for one attempt (removed by the next run if this one is killed, unless kept)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"devloop-{job.task.instance_id[:40]}-{job.index}-"))
    if not job.harness.keep_workdirs:
        mark_owner(workdir)
    return workdir


@dataclass
class Prefetched:
    """One staging: for `key`, in `workdir`; `staged` once ready (None: skipped or failed)."""

    key: tuple[str, str, int, str]
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


def _stage(item: Prefetched, job: AttemptJob) -> None:
    task, h = job.task, job.harness
    try:
        manager = env_manager(h.cache_dir)
        if task.environment is None or not manager.is_built(task.environment):
            return
        item.box = TaskBox(item.workdir / "grade", sandbox=grading_sandbox(h.sandbox)[0], limits=h.limits)
        timings: dict[str, float] = {}
        venv = stage_tree(task, item.box, manager, h.mirrors, timings=timings)
        item.staged = Staged(item.box, venv, timings)
    except Exception:  # the grading starts afresh and meets (and reports) the same problem itself
        item.staged = None
    finally:
        item.done.set()


class Prefetcher:
    """This process's staging: at most one tree ahead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._todo: queue.SimpleQueue[tuple[Prefetched, AttemptJob]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._owner = 0  # the pid that started _thread: a forked pool worker has none of its parent's
        self._ahead: Prefetched | None = None

    def start(self, job: AttemptJob) -> None:
        """Stage `job`'s tree in the background. Never raises: without it, the grading does it itself."""
        with suppress(Exception):
            self.discard()
            item = Prefetched(job_id(job), workdir_for(job))
            with self._lock:
                self._ahead = item
                if self._thread is None or self._owner != os.getpid():
                    self._thread = threading.Thread(target=self._work, name="devloop-prefetch", daemon=True)
                    self._owner = os.getpid()
                    self._thread.start()
                    # A pool worker ends what it staged for nobody when it exits.
                    util.Finalize(self, Prefetcher.discard, args=(self,), exitpriority=10)
            self._todo.put((item, job))

    def claim(self, job: AttemptJob) -> tuple[Staged, Path] | None:
        """`job`'s staged box and its work dir, if that is what was staged here (anything else staged is
        ended); None when `job` must make its own."""
        with self._lock:
            item, self._ahead = self._ahead, None
        if item is None:
            return None
        item.done.wait()
        if item.key == job_id(job) and item.staged is not None:
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
            item, job = self._todo.get()
            _stage(item, job)


PREFETCH = Prefetcher()
