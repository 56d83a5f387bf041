"""A run's disk quota: how much the files a sandbox can write grow over the run, measured by walking them.

Ordinary filesystems have no quota for "this directory tree" without setup (project quotas need mount
options), so the sandbox measures instead. `measure` walks the trees (the workspace, the scratch dir's
`out/`) the way `du` does: allocated blocks, each inode once, never following a link, through directory
file descriptors so that a directory swapped for a link mid-walk is never entered. `DiskQuota` decides
when a walk is worth its cost: routinely often enough to cost at most ~5% of a core whatever the tree's
size, and at once when the filesystem itself grew by more than the room left (one statvfs call), which is
how a fast writer is caught between routine walks.

What counts is the growth since the runtime started: a large repository is not held against the run.
"""

from __future__ import annotations

import heapq
import os
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devloop.runtime.limits import MIB, human_bytes
from devloop.runtime.sandbox_env import outermost

# Share of one core routine walks may take (a walk every `cost / budget` seconds), and the share for
# walks the filesystem's growth asks for (the run may be writing past its limit right now).
ROUTINE_BUDGET = 0.05
TRIGGERED_BUDGET = 0.25
# Directories open at once during a walk (one per level). Real trees are a few dozen levels deep; a
# deeper one is an attempt to hide files, and the filesystem's growth is counted instead (see Usage).
MAX_DEPTH = 256
# While over the limit, a command is stopped only if the files grow by more than this: `ls` or `du`
# printing into their output log is not the writing the limit is for, and `rm` must be able to run.
OVER_SLACK = 1 * MIB
LARGEST_KEPT = 3

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Usage:
    """One walk: bytes allocated under the trees, the largest files, and what could not be measured
    (a directory that could not be opened, or one nested deeper than MAX_DEPTH), if anything."""

    bytes: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)  # (bytes, path), largest first
    unmeasured: str | None = None
    seconds: float = 0.0


def measure(trees: Sequence[Path], keep: int = LARGEST_KEPT) -> Usage:
    """Walk `trees` (absolute directories) and add up the space their files take (st_blocks)."""
    started = time.perf_counter()
    usage = Usage()
    heap: list[tuple[int, str]] = []
    seen: set[tuple[int, int]] = set()  # hard-linked inodes already counted
    for tree in outermost(Path(t) for t in trees):
        try:
            fd = os.open(tree, _DIR_FLAGS)
        except FileNotFoundError:
            continue
        except OSError as exc:
            usage.unmeasured = usage.unmeasured or f"{tree} ({exc.strerror})"
            continue
        usage.bytes += _walk(fd, str(tree), usage, heap, seen, keep)
    usage.largest = sorted(heap, reverse=True)
    usage.seconds = time.perf_counter() - started
    return usage


def _walk(top: int, top_path: str, usage: Usage, heap: list[tuple[int, str]], seen: set[tuple[int, int]],
          keep: int) -> int:  # fmt: skip
    """Depth first, holding one open directory per level; every entry is stat'ed relative to its
    directory's descriptor and every subdirectory opened relative to it, so no path is resolved twice."""
    total = 0
    # Each frame: (directory fd, its path, names of its subdirectories still to enter).
    stack: list[tuple[int, str, list[str]]] = [(top, top_path, [])]
    try:
        while stack:
            fd, where, subdirs = stack[-1]
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except OSError:  # removed meanwhile
                            continue
                        if stat.S_ISDIR(st.st_mode):
                            subdirs.append(entry.name)
                            total += st.st_blocks * 512
                            continue
                        if st.st_nlink > 1:
                            key = (st.st_dev, st.st_ino)
                            if key in seen:
                                continue
                            seen.add(key)
                        size = st.st_blocks * 512
                        total += size
                        if len(heap) < keep:
                            heapq.heappush(heap, (size, f"{where}/{entry.name}"))
                        elif size > heap[0][0]:
                            heapq.heapreplace(heap, (size, f"{where}/{entry.name}"))
            except OSError as exc:
                usage.unmeasured = usage.unmeasured or f"{where} ({exc.strerror})"
            while stack and not _enter_next(stack, usage):
                os.close(stack.pop()[0])
    finally:
        for frame_fd, _, _ in stack:
            os.close(frame_fd)
    return total


def _enter_next(stack: list[tuple[int, str, list[str]]], usage: Usage) -> bool:
    """Open the top frame's next subdirectory and push it; False when it has none left."""
    parent, parent_path, todo = stack[-1]
    while todo:
        name = todo.pop()
        if len(stack) >= MAX_DEPTH:
            usage.unmeasured = usage.unmeasured or f"{parent_path}/{name} (nested over {MAX_DEPTH} deep)"
            continue
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            continue
        except OSError as exc:  # ELOOP: swapped for a link since the listing; EACCES: unreadable
            usage.unmeasured = usage.unmeasured or f"{parent_path}/{name} ({exc.strerror})"
            continue
        stack.append((fd, f"{parent_path}/{name}", []))
        return True
    return False


def _filesystems(trees: Sequence[Path]) -> dict[int, Path]:
    """One path per filesystem (st_dev) holding the trees."""
    out: dict[int, Path] = {}
    for tree in trees:
        try:
            out.setdefault(os.stat(tree).st_dev, tree)
        except OSError:
            continue
    return out


def _fs_used(paths: dict[int, Path]) -> dict[int, int]:
    out = {}
    for dev, path in paths.items():
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        out[dev] = (st.f_blocks - st.f_bfree) * st.f_frsize
    return out


class DiskQuota:
    """The disk limit of one sandbox: `limit` bytes of growth of the files under `trees`.

    The first walk (the baseline) runs in a thread from construction, so it does not delay the
    sandbox's start. `begin_command()` before each command, `check()` on every tick of a running
    command and once at its end (`final=True`). `used` is the growth at the last walk, `peak` its
    highest value.
    """

    def __init__(self, limit: int, trees: Sequence[Path], *, tick_s: float = 0.5) -> None:
        self.limit = limit
        self.trees = outermost(Path(t).absolute() for t in trees)
        self.tick_s = tick_s
        self.used = 0
        self.peak = 0
        self.last = Usage()
        self.walks = 0
        self._baseline = 0
        self._fs_paths = _filesystems(self.trees)
        self._fs_ref: dict[int, int] = {}
        self._fs_start: dict[int, int] = {}
        self._command_start = 0
        self._hidden_at_start = False
        self._last_walk_end = 0.0
        self._ready = threading.Event()
        threading.Thread(target=self._first_walk, name="devloop-disk-baseline", daemon=True).start()

    def _first_walk(self) -> None:
        try:
            self._fs_start = _fs_used(self._fs_paths)
            self.last = measure(self.trees)
            self._baseline = self.last.bytes
            # Something unreadable from the start (not the model's doing): the walk is all we can go by.
            self._hidden_at_start = self.last.unmeasured is not None
            self._fs_ref = dict(self._fs_start)
            self._last_walk_end = time.monotonic()
        finally:
            self._ready.set()

    def rebaseline(self) -> None:
        """Take the baseline again, in the background as at construction: the host added files to the
        trees after the sandbox started and before any command ran (so none of them is the run's)."""
        self._ready.wait()
        self._ready.clear()
        self.used = self.peak = 0
        threading.Thread(target=self._first_walk, name="devloop-disk-baseline", daemon=True).start()

    def begin_command(self) -> None:
        """Note the usage a command starts from (a command may shrink it while over the limit)."""
        self._ready.wait()
        self._command_start = self.used

    def check(self, *, final: bool = False) -> str | None:
        """Why the run is over its disk limit now, as one line, or None. During a command (not
        `final`) only when the files also grew by more than OVER_SLACK since the command began."""
        self._ready.wait()
        if self._should_walk(final):
            self._walk()
        if self.used <= self.limit:
            return None
        if not final and self.used <= self._command_start + OVER_SLACK:
            return None
        return self.describe()

    def _should_walk(self, final: bool) -> bool:
        now = time.monotonic()
        since = now - self._last_walk_end
        cost = self.last.seconds
        if since >= max(self.tick_s, cost / ROUTINE_BUDGET):
            return True
        if self.used > self.limit:  # over: only a fresh walk may stop a command, or tell it is over
            return final or since >= cost / TRIGGERED_BUDGET
        fs_now = _fs_used(self._fs_paths)
        grown = sum(fs_now.get(dev, used) - used for dev, used in self._fs_ref.items())
        if grown < self.limit - self.used:
            return False  # even if all of the filesystems' growth were ours, we would be within the limit
        return final or since >= cost / TRIGGERED_BUDGET

    def _walk(self) -> None:
        fs_now = _fs_used(self._fs_paths)
        usage = measure(self.trees)
        self.walks += 1
        self.last = usage
        self._fs_ref = fs_now
        self._last_walk_end = time.monotonic()
        grown = usage.bytes - self._baseline
        if usage.unmeasured is not None and not self._hidden_at_start:
            # Part of the tree hides from the walk: count the filesystems' growth since the start instead
            # (an overestimate when other processes write there too, never an underestimate).
            fs_grown = sum(fs_now.get(dev, used) - used for dev, used in self._fs_start.items())
            grown = max(grown, fs_grown)
        self.used = grown
        self.peak = max(self.peak, grown)

    def describe(self) -> str:
        """One line: how much the files grew, the limit, the largest files (and what hid from the walk)."""
        largest = ", ".join(f"{path} {human_bytes(size)}" for size, path in self.last.largest)
        text = (
            f"the files this run can write grew by {human_bytes(max(self.used, 0))}, over its disk limit of "
            f"{human_bytes(self.limit)}"
        )
        if largest:
            text += f" (largest: {largest})"
        if self.last.unmeasured and not self._hidden_at_start:
            text += f"; {self.last.unmeasured} could not be measured, so the disk's growth was counted"
        return text
