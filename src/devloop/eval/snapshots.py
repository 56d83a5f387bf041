"""What an install command changed in a directory (an instance's tree or venv): listed before and after,
copied out as host-owned read-only files, and put back into another directory at another path.

Nothing here follows a symbolic link of the directory: it is walked by directory fds with O_NOFOLLOW,
links are recorded as links (their targets as text), and a FIFO, socket or device is refused. Copies are
made by reading and writing, never by linking, so neither the directory a snapshot came from nor one it
is restored into shares an inode with the cache.

A file that names the old location is rewritten at restore (see `envs.relocated`) when it is text (no NUL
byte). Binary content naming it is refused (`NotCacheable`), except where the path cannot change what
runs: an ELF file's sections that are not loaded (debug info, symbol tables: a compiler records its
working directory there). A `.pyc` naming it (its constants hold the source's strings, e.g. an editable
finder's path map) is left out, and removed where the install had replaced one: Python compiles it again
from the restored source.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.eval.envs import relocated
from devloop.eval.paths import remove_beneath
from devloop.tasks.safety import path_problem, shown

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Stat = tuple[str, int, int, int, int]
"""kind (f file, l link, d directory, x anything else), permission bits, size, mtime_ns, inode."""


class NotCacheable(Exception):
    """What an install produced cannot be restored elsewhere; the message (one line) says which path and why."""


class CorruptEntry(Exception):
    """A cache entry is not as it was written (a file missing, resized, writable by others...)."""


def listing(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, Stat]:
    """Every entry under `root` by relative path, as lstat sees it; `skip`: top-level names left out."""
    out: dict[str, Stat] = {}
    fd = os.open(root, _DIR)
    try:
        _walk(fd, "", out, skip)
    finally:
        os.close(fd)
    return out


def _walk(dir_fd: int, prefix: str, out: dict[str, Stat], skip: frozenset[str]) -> None:
    with os.scandir(dir_fd) as it:
        entries = list(it)
    for entry in entries:
        if not prefix and entry.name in skip:
            continue
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        kind = (
            "d" if stat.S_ISDIR(mode) else "f" if stat.S_ISREG(mode) else "l" if stat.S_ISLNK(mode) else "x"
        )
        rel = prefix + entry.name
        out[rel] = (kind, stat.S_IMODE(mode), st.st_size, st.st_mtime_ns, st.st_ino)
        if kind == "d":
            child = os.open(entry.name, _DIR, dir_fd=dir_fd)
            try:
                _walk(child, rel + "/", out, skip)
            finally:
                os.close(child)


@dataclass
class Changes:
    """`removed`: paths gone (or now of another kind), outermost only; `put`: new or changed paths, sorted
    (a directory before what it holds)."""

    removed: list[str]
    put: list[str]

    def __bool__(self) -> bool:
        return bool(self.removed or self.put)


def changes(before: dict[str, Stat], after: dict[str, Stat]) -> Changes:
    """What turned `before` into `after`. An existing directory counts as unchanged (what it holds is
    compared one by one); a file or link whose kind, mode, size, mtime or inode differs is changed."""
    gone = sorted(p for p, s in before.items() if p not in after or after[p][0] != s[0])
    removed: list[str] = []
    for path in gone:  # sorted: a directory comes before what it held
        if not removed or not path.startswith(removed[-1] + "/"):
            removed.append(path)
    put = sorted(
        p
        for p, s in after.items()
        if p not in before or before[p][0] != s[0] or (s[0] != "d" and before[p] != s)
    )
    for path in removed:
        _checked(path)
    return Changes(removed, put)


def _checked(rel: str) -> str:
    if (problem := path_problem(rel)) is not None:
        raise NotCacheable(f"the install changed {shown(rel)}, a path devloop does not restore: it {problem}")
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCacheable(f"the install changed {shown(rel)}, a name that is not valid UTF-8") from None
    return rel


@contextmanager
def _dirs(root: Path) -> Iterator[Any]:
    """A function from a relative directory path to an fd of it, opened without following links (cached,
    all closed on exit); a link or a missing directory on the way raises OSError."""
    fds: dict[str, int] = {"": os.open(root, _DIR)}

    def open_dir(rel: str) -> int:
        if rel not in fds:
            parent, _, name = rel.rpartition("/")
            fds[rel] = os.open(name, _DIR, dir_fd=open_dir(parent))
        return fds[rel]

    try:
        yield open_dir
    finally:
        for fd in fds.values():
            os.close(fd)


def snapshot(root: Path, put: Sequence[str], store: Path, first: int, olds: Sequence[bytes],
             budget: int) -> tuple[list[dict[str, Any]], int, list[str]]:  # fmt: skip
    """Copy `put` (paths under `root`) into `store` as files `<n>` (from `first`), read-only. Returns the
    manifest records, the bytes stored and the `.pyc` files left out. NotCacheable for a special file, an
    unsafe name, binary content naming one of `olds` (the directories' paths), or more than `budget`
    bytes in all."""
    records: list[dict[str, Any]] = []
    dropped: list[str] = []
    total, n = 0, first
    with _dirs(root) as open_dir:
        for rel in put:
            parent, _, name = _checked(rel).rpartition("/")
            dir_fd = open_dir(parent)
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            record: dict[str, Any] = {
                "path": rel,
                "mode": stat.S_IMODE(st.st_mode),
                "mtime_ns": st.st_mtime_ns,
            }
            if stat.S_ISDIR(st.st_mode):
                records.append({**record, "kind": "dir"})
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=dir_fd)
                _checked_target(rel, target)
                records.append({**record, "kind": "link", "target": target,
                                "relocate": any(o in os.fsencode(target) for o in olds)})  # fmt: skip
                continue
            if not stat.S_ISREG(st.st_mode):
                raise NotCacheable(f"the install made {shown(rel)}, a special file (FIFO, socket or device)")
            data = _read(dir_fd, name, rel)
            relocate = _relocation(rel, data, olds)
            if relocate is None:
                dropped.append(rel)
                continue
            total += len(data)
            if total > budget:
                raise NotCacheable(f"the install's output is over {budget >> 20} MiB")
            blob = f"{n}"
            n += 1
            fd = os.open(store / blob, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            records.append({**record, "kind": "file", "size": len(data), "blob": blob, "relocate": relocate})
    return records, total, dropped


def _checked_target(rel: str, target: str) -> None:
    try:
        target.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCacheable(f"the install made {shown(rel)}, a link whose target is not valid UTF-8") from None
    if "\x00" in target:
        raise NotCacheable(f"the install made {shown(rel)}, a link with a NUL in its target")


def _read(dir_fd: int, name: str, rel: str) -> bytes:
    fd = os.open(name, _READ, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise NotCacheable(f"the install made {shown(rel)}, a special file (FIFO, socket or device)")
        return src.read()


def _relocation(rel: str, data: bytes, olds: Sequence[bytes]) -> bool | None:
    """Whether `data` must be rewritten at restore (text naming an old path), or None for a `.pyc` naming
    one (left out); NotCacheable when it names one in a way that cannot be rewritten and could matter."""
    if not any(old in data for old in olds):
        return False
    if b"\0" not in data:
        return True
    if rel.endswith(".pyc") and data[2:4] == b"\r\n":
        return None
    if data[:4] == b"\x7fELF":
        if all(_unloaded(data, old) for old in olds):
            return False  # debug info and symbol tables: what a debugger reads, never what runs
        raise NotCacheable(
            f"{shown(rel)} is an ELF file naming the build's directory in a loaded section (an RPATH, "
            "RUNPATH or a string the code uses)"
        )
    raise NotCacheable(f"{shown(rel)} names the build's directory in binary content that cannot be rewritten")


def _unloaded(data: bytes, needle: bytes) -> bool:
    """Whether every occurrence of `needle` in the ELF image `data` lies inside a section that is not
    loaded at run time (no SHF_ALLOC, with file contents). A malformed header answers False."""
    spans = _unloaded_spans(data)
    at = data.find(needle)
    while at >= 0:
        if not any(start <= at and at + len(needle) <= end for start, end in spans):
            return False
        at = data.find(needle, at + 1)
    return True


def _unloaded_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) file offsets of the sections of an ELF image that are not loaded (sh_flags lacks
    SHF_ALLOC, sh_type is not SHT_NOBITS); [] when the header cannot be read."""
    if len(data) < 64 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            shoff, = struct.unpack_from(order + "Q", data, 0x28)  # fmt: skip
            entsize, count = struct.unpack_from(order + "HH", data, 0x3A)
            header = order + "IIQQQQ"
        else:
            shoff, = struct.unpack_from(order + "I", data, 0x20)  # fmt: skip
            entsize, count = struct.unpack_from(order + "HH", data, 0x2E)
            header = order + "IIIIII"
        if count == 0 and shoff:  # extended numbering: the count is section 0's sh_size
            count = struct.unpack_from(header, data, shoff)[5]
        if entsize < struct.calcsize(header) or shoff + count * entsize > len(data):
            return []
        spans = []
        for i in range(count):
            _name, kind, flags, _addr, offset, size = struct.unpack_from(header, data, shoff + i * entsize)
            if not flags & 0x2 and kind != 8 and offset + size <= len(data):
                spans.append((offset, offset + size))
        return spans
    except struct.error:
        return []


def restore(root: Path, records: Sequence[dict[str, Any]], removed: Sequence[str], store: Path,
            moves: Sequence[tuple[bytes, bytes]], owner: tuple[int, int] | None) -> None:  # fmt: skip
    """Make `root` what the install left: `removed` deleted, then `records` created (directories, files
    copied from `store` with `moves` applied where marked, links), with their modes and mtimes, owned by
    `owner` (uid, gid) when given. CorruptEntry when a stored file is not as recorded; OSError when the
    directory is not as the entry expects (a path already there, a link on the way)."""
    for rel in removed:
        remove_beneath(root, rel)
    made: list[tuple[int, str, dict[str, Any]]] = []
    with _dirs(root) as open_dir:
        for record in records:
            rel = record["path"]
            if path_problem(rel) is not None:
                raise CorruptEntry(f"the entry names {shown(rel)}")
            parent, _, name = rel.rpartition("/")
            dir_fd = open_dir(parent)
            if record["kind"] == "dir":
                os.mkdir(name, 0o700, dir_fd=dir_fd)
                if owner is not None:
                    os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
                made.append((dir_fd, name, record))
                continue
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)  # a file the install replaced; never written through
            if record["kind"] == "link":
                target = record["target"]
                if record.get("relocate"):
                    target = os.fsdecode(relocated(os.fsencode(target), moves))
                os.symlink(target, name, dir_fd=dir_fd)
                if owner is not None:
                    os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
                continue
            data = _blob(store, record)
            if record.get("relocate"):
                data = relocated(data, moves)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)  # fmt: skip
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                if owner is not None:
                    os.fchown(fd, *owner)
                os.fchmod(fd, record["mode"])
                os.utime(fd, ns=(record["mtime_ns"], record["mtime_ns"]))
        for dir_fd, name, record in reversed(made):  # last: a read-only directory is still filled
            fd = os.open(name, _DIR, dir_fd=dir_fd)
            try:
                os.fchmod(fd, record["mode"])
            finally:
                os.close(fd)


def _blob(store: Path, record: dict[str, Any]) -> bytes:
    """A stored file's bytes, after checking it is the regular, read-only, host-owned file of the
    recorded size that the fill wrote."""
    try:
        fd = os.open(store / str(record["blob"]), _READ)
    except OSError as exc:
        raise CorruptEntry(f"file {record['blob']} of the entry: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_size != record["size"] or st.st_uid != os.geteuid()
                or st.st_mode & 0o222):  # fmt: skip
            raise CorruptEntry(f"file {record['blob']} of the entry is not the read-only copy it wrote")
        data = src.read()
    if len(data) != record["size"]:
        raise CorruptEntry(f"file {record['blob']} of the entry changed size while read")
    return data
