"""Removing finished work dirs off the critical path, in a background thread.

An instance's work dir (its tree, a venv clone) is removed once its verdict is written; `rmdir` of a
few hundred entries is most of that, and nothing the next instance does depends on it. So the removal
is queued to a thread and the next instance starts at once. The thread runs only while something is
queued and is not a daemon: a process exits only after everything queued is removed (a pool worker
waits for it when the pool shuts down), and `wait_removed()`, which the scheduler calls before
returning, waits for it explicitly, so no removal outlives the run.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import deque
from pathlib import Path

_lock = threading.Lock()
_todo: deque[Path] = deque()
_thread: threading.Thread | None = None
_owner = 0  # the pid that started _thread: a forked child has none of its parent's threads


def _work() -> None:
    global _thread
    while True:
        with _lock:
            if not _todo:
                _thread = None  # under the lock: remove_later starts a new one for what comes next
                return
            path = _todo.popleft()
        shutil.rmtree(path, ignore_errors=True)


def remove_later(path: Path) -> None:
    """Remove the directory `path` (never following a link in it, as shutil.rmtree) in the background."""
    global _thread, _owner
    with _lock:
        _todo.append(Path(path))
        if _thread is None or _owner != os.getpid():
            _thread = threading.Thread(target=_work, name="devloop-remove", daemon=False)
            _owner = os.getpid()
            _thread.start()


def wait_removed() -> None:
    """Return once everything queued so far in this process is removed."""
    with _lock:
        thread = _thread if _owner == os.getpid() else None
    if thread is not None:
        thread.join()
