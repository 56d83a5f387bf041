"""Removals taken off the critical path, in a background thread.

Nothing that comes next depends on a finished instance's work dir (its tree, a venv clone) or an ended
sandbox's scratch dir being gone, and removing them is slow on some disks: on ext4 mounted with
`discard` (the CI machine's) each `rmdir` takes ~4 ms, so a sandbox's three-directory scratch costs
~12 ms and a tree of a few hundred directories far more. So such removals are queued to a thread and
the caller goes on at once. The thread runs only while something is queued and is not a daemon: a
process exits only after everything queued is done (a pool worker waits for it when the pool shuts
down), and `wait_removed()`, which the eval scheduler calls before returning, waits for it explicitly,
so no removal outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from devloop.safefs.tree import remove_tree

_lock = threading.Lock()
_todo: deque[Callable[[], object]] = deque()
_thread: threading.Thread | None = None
_owner = 0  # the pid that started _thread: a forked child has none of its parent's threads


def _work() -> None:
    global _thread
    while True:
        with _lock:
            if not _todo:
                _thread = None  # under the lock: call_later starts a new one for what comes next
                return
            job = _todo.popleft()
        with contextlib.suppress(Exception):  # a removal that fails leaves a directory, never stops the queue
            job()


def call_later(job: Callable[[], object]) -> None:
    """Run `job` (a removal: it must not raise for a missing path) on the background thread."""
    global _thread, _owner
    with _lock:
        _todo.append(job)
        if _thread is None or _owner != os.getpid():
            _thread = threading.Thread(target=_work, name="devloop-remove", daemon=False)
            _owner = os.getpid()
            _thread.start()


def remove_later(path: Path) -> None:
    """Remove the directory `path` (never following a link in it, as shutil.rmtree) in the background."""
    target = Path(path)
    call_later(lambda: remove_tree(target))


def wait_removed() -> None:
    """Return once everything queued so far in this process is done."""
    with _lock:
        thread = _thread if _owner == os.getpid() else None
    if thread is not None:
        thread.join()
