"""Worker processes that never outlive the process that started them, even one killed with SIGKILL.

A process pool's workers wait on a queue from their parent; when the parent is killed with SIGKILL
they wait forever, and so do the sandboxes they started. `worker_pool` gives each worker a parent-death
signal (PR_SET_PDEATHSIG, SIGKILL), which the kernel delivers when the parent dies; the sandboxes a
worker starts have one too (identity.launcher_preexec), so the whole chain goes.

The signal is tied to the *thread* that forked the worker, not to its process: a pool forked from a
short-lived thread would lose its workers when that thread ends. So the signal is only asked for when
the fork came from the main thread; otherwise a watchdog thread in the worker polls for a new parent.
Either way the worker first checks that its parent is still the one that made the pool, in case it
died before the signal was set.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
# How often a watchdog worker looks for a dead parent (when it could not be given the signal).
WATCHDOG_S = 0.25

_forked_by_main_thread = False


def _note_forking_thread() -> None:
    global _forked_by_main_thread
    _forked_by_main_thread = threading.current_thread() is threading.main_thread()


# Runs in the parent just before every fork; the child inherits the value, so it knows who forked it.
os.register_at_fork(before=_note_forking_thread)


def die_with_parent(parent: int) -> None:
    """Initializer for a pool worker: SIGKILL this process when `parent` (the pool's creator) dies."""
    if _forked_by_main_thread:
        with contextlib.suppress(Exception):  # not Linux, or no libc: the watchdog below instead
            if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # it died before the signal was set
                    os.kill(os.getpid(), signal.SIGKILL)
                return
    threading.Thread(target=_watch_parent, args=(parent,), name="devloop-parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCHDOG_S)
    os.kill(os.getpid(), signal.SIGKILL)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor of `workers` forked processes, each killed when this process dies."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=die_with_parent, initargs=(os.getpid(),))  # fmt: skip
