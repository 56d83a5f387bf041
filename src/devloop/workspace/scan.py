"""The stat scan that tells whether a step changed the tree without running git.

Most steps change nothing (the model reads, greps, runs tests), so the per-step patch is not recomputed
when nothing changed: before git runs, the host takes a stat scan of the tree (lstat only, directories
opened relative to their parent without following links; every entry's name, mode and inode, a file's
size, mtime and ctime), and a step whose scan equals the one taken before the last git run reuses that run's tree and
patch. ctime cannot be set by a process, so a rewrite keeping size and mtime still shows. A scan is only
trusted once the newest ctime in it is older than the file system's timestamp granularity (a write in the
same clock tick could leave every field as it was); anything unsure (an unreadable directory, a link
swapped in mid-walk) means git runs. A tree of more than SCAN_LIMIT entries is left to git (with its
untracked cache) on every step: scanning it would cost more than git does.

The scan also gives the tree's shape: its paths, their modes and the ignore files' metadata. When the
shape is the one the private index was staged with, `git add -A` would change nothing there but
contents, which a diff of the work tree against the base reads anyway: the patch then takes one git
process (`git diff <base>`) instead of staging everything and diffing the index.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devloop.workspace.watch import TreeWatch

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Entries past which a scan costs more than the git run it would spare (bench/step_patch.py: a scan of
# 30,000 files takes longer than `add -A` with the untracked cache); such a tree is left to git.
SCAN_LIMIT = 15_000
_MAX_DEPTH = 256
_COARSE_CLOCK = 5  # CLOCK_REALTIME_COARSE: the clock Linux stamps file times with


def _granularity_ns() -> int:
    """How far a file time may lag the clock: twice the coarse clock's tick (4 ms at HZ=250), at
    least 2 ms; file systems with whole-second times are handled where a time is seen."""
    try:
        tick = time.clock_getres(_COARSE_CLOCK)
    except OSError:
        tick = 0.01
    return max(int(2 * tick * 1e9), 2_000_000)


_GRANULARITY_NS = _granularity_ns()


# What the scan leaves out: the model's own repository (git never stages a `.git`), and the scratch the
# patch never includes (SCRATCH_GLOBS), which tests write on every run (__pycache__): a checkpoint's tree
# may then hold older scratch files, the patch never does.
UNSCANNED = {".git": "top", ".devloop": "top-dir", "__pycache__": "dir", ".pytest_cache": "dir",
              ".devloop-run": "file"}  # fmt: skip
SCRATCH_SUFFIXES = (".pyc", ".orig", ".rej")


def _scratch(entry: os.DirEntry[str], top: bool) -> bool:
    where = UNSCANNED[entry.name]
    if where == "top":
        return top
    if where == "file":
        return not entry.is_dir(follow_symlinks=False)
    return entry.is_dir(follow_symlinks=False) and (top or where == "dir")


TOO_MANY = b""  # scan_tree's answer for a tree over its limit


@dataclass
class ScanRecords:
    """What a scan saw, directory by directory, to tell later which files changed (see changed_files):
    per directory (relative path, "" for the top, else ending in "/") its names, the (mode, inode, size)
    and (mtime, ctime) of each entry, and its newest ctime."""

    dirs: dict[str, tuple[list[str], list[int], list[int], int]] = field(default_factory=dict)
    # Per directory: the bytes it adds to the digest and to the shape (kept, so that a rescan hashes the
    # directories it did not list again without encoding them again).
    blobs: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    started_ns: int = 0
    margin_ns: int = 0
    attributes: bool = False  # a `.gitattributes` somewhere: git's diff may then differ by file
    complete: bool = False  # the walk ended without an error or a limit


def changed_files(old: ScanRecords, new: ScanRecords) -> list[str] | None:
    """The regular files whose metadata differs between two complete scans of the same shape (each
    directory listing the same names), or that `old` saw within the file time granularity of its start
    (a later write in the same tick could have kept every field); None when that cannot be told (another
    shape, something but a regular file changed, a scan incomplete)."""
    if not (old.complete and new.complete) or old.dirs.keys() != new.dirs.keys():
        return None
    cut = old.started_ns - old.margin_ns
    out = []
    for where, (names, numbers, times, _) in new.dirs.items():
        old_names, old_numbers, old_times, old_newest = old.dirs[where]
        if names != old_names:
            return None
        if numbers == old_numbers and times == old_times and old_newest < cut:
            continue
        for k, name in enumerate(names):
            if (
                numbers[3 * k : 3 * k + 3] == old_numbers[3 * k : 3 * k + 3]
                and times[2 * k : 2 * k + 2] == old_times[2 * k : 2 * k + 2]
                and old_times[2 * k + 1] < cut
            ):
                continue
            if not (stat.S_ISREG(numbers[3 * k]) and stat.S_ISREG(old_numbers[3 * k])):
                if (
                    stat.S_ISDIR(numbers[3 * k])
                    and numbers[3 * k : 3 * k + 2] == old_numbers[3 * k : 3 * k + 2]
                ):
                    continue  # the same directory: its entries are compared as their own
                return None
            out.append(where + name)
    return out


def scan_tree(root: Path, *, limit: int | None = None) -> bytes | None:
    """See scan_shape: its first answer."""
    return scan_shape(root, limit=limit)[0]


def scan_shape(
    root: Path,
    *,
    limit: int | None = None,
    records: ScanRecords | None = None,
    watch: TreeWatch | None = None,
) -> tuple[bytes | None, bytes | None]:
    """A digest of the metadata of everything under `root` but its top-level `.git` and scratch (the
    name, mode and inode of every entry, and a file's or link's size, mtime and ctime, directory by
    directory: every directory is listed, so an entry added, removed or renamed shows), or None when it cannot be trusted to
    tell a change: a directory that cannot be opened (unreadable, or swapped for a link mid-walk: no link
    is followed), or an entry changed too recently, within the file time
    granularity of the scan's start (a second write in the same tick could leave every field alike).
    TOO_MANY (empty) past `limit` entries.

    The second answer, the tree's shape, is taken in the same walk and trusted even when the entries are
    recent: a digest of every entry's name and mode only, plus everything about a `.gitignore` (its
    inode, size and times), so equal shapes mean the same paths with the same modes under the same ignore
    files, whatever their contents became. None wherever the first answer is None for any reason but a
    recent entry (and TOO_MANY past the limit).

    `records`, when given, is filled with what the walk saw (see ScanRecords). `watch`, when given, gets
    each directory just before it is listed, and hears of any file with more than one link (watch.py)."""
    limit = SCAN_LIMIT if limit is None else limit
    records = ScanRecords() if records is None else records
    started = time.time_ns()
    newest = count = 0
    try:
        top = os.open(root, _DIR_FLAGS)
    except OSError:
        return None, None
    # Each frame: a directory's fd and the names of its subdirectories still to enter; and its path.
    stack: list[tuple[int, list[str]]] = [(top, [])]
    where = [""]
    try:
        while stack:
            fd, subdirs = stack[-1]
            names, numbers, times, kinds, found, latest = _list(fd, where[-1], watch)
            subdirs += found
            newest = max(newest, latest)
            count += len(names)
            if count > limit:
                return TOO_MANY, TOO_MANY
            records.dirs[where[-1]] = (names, numbers, times, max(times[1::2], default=0))
            records.blobs[where[-1]] = _blobs(where[-1], names, numbers, times, kinds)
            records.attributes = records.attributes or ".gitattributes" in names
            while stack and not stack[-1][1]:
                os.close(stack.pop()[0])
                where.pop()
            if stack:
                if len(stack) >= _MAX_DEPTH:
                    return None, None
                parent, todo = stack[-1]
                name = todo.pop(0)
                stack.append((os.open(name, _DIR_FLAGS, dir_fd=parent), []))
                where.append(f"{where[-1]}{name}/")
    except (OSError, OverflowError):  # unreadable, removed or swapped meanwhile; a time out of range
        return None, None
    finally:
        for fd, _ in stack:
            os.close(fd)
    return _finish(records, started, newest)


def rescan(
    root: Path,
    old: ScanRecords,
    dirty: set[str],
    records: ScanRecords,
    *,
    limit: int | None = None,
    watch: TreeWatch | None = None,
) -> tuple[bytes | None, bytes | None] | None:
    """scan_shape's answers with only the directories in `dirty` listed again (paths as in ScanRecords),
    the others taken from `old`, a complete scan of the same tree: what a scan would say when those are
    the only directories whose entries changed since `old` (the watch's word) and none was added, removed
    or moved. `records` is filled as scan_shape fills it. None when that does not hold (a directory of
    `dirty` unknown to `old`, gone, swapped for a link, or listing other subdirectories than it did, or
    the tree past `limit`): then only a whole scan can tell."""
    if not old.complete or not dirty <= old.dirs.keys():
        return None
    limit = SCAN_LIMIT if limit is None else limit
    started = time.time_ns()
    dirs, blobs = dict(old.dirs), dict(old.blobs)
    for where in dirty:
        try:
            fd = _open_beneath(root, where)
        except OSError:
            return None
        try:
            names, numbers, times, listed_kinds, subdirs, _ = _list(fd, where, watch)
        except (OSError, OverflowError):
            return None
        finally:
            os.close(fd)
        was_names, was_numbers = old.dirs[where][0], old.dirs[where][1]
        was_subdirs = [n for k, n in enumerate(was_names) if stat.S_ISDIR(was_numbers[3 * k])]
        if subdirs != was_subdirs:  # the tree's directories are not the ones `old` walked
            return None
        dirs[where] = (names, numbers, times, max(times[1::2], default=0))
        blobs[where] = _blobs(where, names, numbers, times, listed_kinds)
    if sum(len(listed[0]) for listed in dirs.values()) > limit:
        return None
    records.dirs, records.blobs = dirs, blobs
    records.attributes = any(".gitattributes" in listed[0] for listed in dirs.values())
    newest = max((listed[3] for listed in dirs.values()), default=0)
    return _finish(records, started, newest)


def _open_beneath(root: Path, where: str) -> int:
    """The directory `where` (relative, "" or ending in "/") under `root`, opened one name at a time
    without following a link."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in where.split("/")[:-1]:
            parent, fd = fd, -1
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def _list(
    fd: int, where: str, watch: TreeWatch | None
) -> tuple[list[str], list[int], list[int], list[int], list[str], int]:
    """The directory `where`, open at `fd`, as the scan sees it: its names, their (mode, inode, size) and
    (mtime, ctime), what its shape digests, its subdirectories and its newest ctime (regular files and
    links only). The watch, if any, gets the directory before it is listed."""
    top = where == ""
    if watch is not None:
        seen = os.fstat(fd)
        watch.add(fd, (seen.st_dev, seen.st_ino), where)
    names: list[str] = []
    numbers: list[int] = []
    times: list[int] = []
    kinds: list[int] = []
    subdirs: list[str] = []
    newest = 0
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name in UNSCANNED and _scratch(entry, top):
                continue
            if entry.name.endswith(SCRATCH_SUFFIXES) and not entry.is_dir(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            names.append(entry.name)
            kinds.append(st.st_mode)  # permissions too: a file git could not read may become readable
            if entry.name == ".gitignore":
                kinds += (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if stat.S_ISDIR(st.st_mode):  # its entries are listed: its own times add nothing
                subdirs.append(entry.name)  # (and scratch written in it would count)
                numbers += (st.st_mode, st.st_ino, 0)
                times += (0, 0)
                continue
            numbers += (st.st_mode, st.st_ino, st.st_size)
            times += (st.st_mtime_ns, st.st_ctime_ns)
            if st.st_nlink > 1 and watch is not None:
                watch.linked()
            if st.st_ctime_ns > newest:
                newest = st.st_ctime_ns
    return names, numbers, times, kinds, subdirs, newest


def _blobs(
    where: str, names: list[str], numbers: list[int], times: list[int], kinds: list[int]
) -> tuple[bytes, bytes]:
    """What the directory `where` adds to the digest and to the shape: its depth and entry count, its
    names, then its entries' numbers and times (the digest) or their kinds (the shape)."""
    head = b"%d/%d\0" % (where.count("/") + 1, len(names))
    listed = "\0".join(names).encode("utf-8", "surrogateescape")
    numbered = array("Q", numbers).tobytes() + array("q", times).tobytes()
    return head + listed + numbered, head + listed + array("q", kinds).tobytes()


def _finish(records: ScanRecords, started: int, newest: int) -> tuple[bytes | None, bytes | None]:
    """The digest and the shape of a complete `records` (each directory's in the walk's order), the
    digest None when its newest ctime is within the file time granularity of `started`."""
    blobs = records.blobs.values()
    digest = hashlib.blake2b(b"".join(b[0] for b in blobs), digest_size=32)
    shape = hashlib.blake2b(b"".join(b[1] for b in blobs), digest_size=32)
    margin = 2_000_000_000 if newest % 1_000_000_000 == 0 else _GRANULARITY_NS
    records.started_ns, records.margin_ns, records.complete = started, margin, True
    if newest >= started - margin:
        return None, shape.digest()
    return digest.digest(), shape.digest()
