"""Removing a directory tree quickly where each `rmdir` waits on the disk.

On some filesystems an `rmdir` blocks for milliseconds (ext4 with online discard: on this project's CI
machines from 0.1 ms on a quiet disk to 4 ms and more while other processes write), so a workspace of
~30 directories took ~80 ms to remove one directory at a time on the loaded machine. The waits overlap
across threads: the directories are removed deepest first, each depth's in parallel (~15 ms for the same
tree). On a quick disk threads cost more than they save, so the first few directories are removed one
at a time and threads start only if those were slow. Nothing is
followed: the tree is listed without following links, each removal is shutil.rmtree's fd-based walk
(which never follows a symbolic link), and a last sequential rmtree of the whole takes whatever a
directory swapped for a link in the meantime left.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Directories removed one at a time first; past that, threads take over if each took longer than SLOW_S
# (on a disk that answers an rmdir in microseconds, starting threads would cost more than they save).
PROBE = 3
SLOW_S = 0.0005
WORKERS = 8


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_tree(path: Path | str, *, workers: int = WORKERS, slow_s: float = SLOW_S) -> None:
    """Remove `path` and everything under it, never following a link in it. Like
    `shutil.rmtree(path, ignore_errors=True)`: a missing path or a file that cannot be removed is no
    error (what is left stays). `slow_s`: the time per directory above which the rest is removed in
    parallel (0: always)."""
    root = os.fspath(path)
    if os.path.islink(root):  # as shutil.rmtree: a link is not a tree to remove (os.walk would enter it)
        return
    levels: dict[int, list[str]] = {}
    for top, _dirs, _files in os.walk(root, followlinks=False):  # links to directories are not entered
        levels.setdefault(top.count(os.sep), []).append(top)
    depths = sorted(levels, reverse=True)[:-1]  # the root's own level last, below
    pool: ThreadPoolExecutor | None = None
    done, started = 0, time.monotonic()
    try:
        for depth in depths:
            queued = []
            for directory in levels[depth]:
                if pool is None and done >= PROBE and time.monotonic() - started > slow_s * done:
                    pool = ThreadPoolExecutor(workers, thread_name_prefix="devloop-rm")
                if pool is None:
                    _remove(directory)
                    done += 1
                    continue
                try:
                    queued.append(pool.submit(_remove, directory))
                except RuntimeError:  # the interpreter is exiting (a pool worker's last removal): no threads
                    _remove(directory)
            for future in queued:  # a depth is gone before the one above it starts
                future.result()
    finally:
        if pool is not None:
            pool.shutdown()
    shutil.rmtree(root, ignore_errors=True)
