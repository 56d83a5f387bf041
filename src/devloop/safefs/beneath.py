"""The resolving half of `devloop.safefs`: `SafeRoot`, which opens every path beneath a root directory fd,
with openat2 RESOLVE_BENEATH or, without it, a walk of O_NOFOLLOW opens that follows links itself."""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterable
from pathlib import Path

from devloop.safefs.fdops import (
    A_LINK,
    Entry,
    EscapeError,
    SafeFSError,
    inherit_owner,
    link_target,
    openat2,
    openat2_usable,
    read_fd,
    reported,
    write_at,
)

# Tests set this to False to exercise the userspace walk on kernels that have openat2.
USE_OPENAT2 = True

_MAX_HOPS = 40  # symbolic links followed in one resolution, as the kernel's MAXSYMLINKS
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SafeRoot:
    """An open directory fd; every method takes a path relative to it (or absolute, lexically under it).

    `path` itself is trusted (the host chose it); it is resolved once and opened with O_NOFOLLOW.

    `fence`: root-relative paths (".git") that no write, mkdirs or unlink may enter or end on, however it
    is reached (a link to them included). It is checked in the same walk of O_NOFOLLOW opens that does
    the write, on the directories actually opened, so a link swapped in between a caller's check and the
    write cannot lead there."""

    def __init__(self, path: str | os.PathLike[str], *, fence: Iterable[str] = ()) -> None:
        self.fence = frozenset(posixpath.normpath(f).strip("/") for f in fence)
        self.given = Path(os.path.abspath(path))
        self.path = Path(os.path.realpath(path))
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise SafeFSError(
                str(path), f"cannot open the directory: {exc.strerror}", exc.errno or 0
            ) from None
        self._dev = os.fstat(self.fd).st_dev

    def close(self) -> None:
        """Close the root fd (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- paths --------------------------------------------------------------------------------------

    def relative(self, path: str | os.PathLike[str]) -> str:
        """`path` normalised and relative to the root ('' is the root); EscapeError if it is not beneath it."""
        text = os.fspath(path)
        if "\x00" in text:
            raise SafeFSError(text, "the path contains a NUL character")
        norm = posixpath.normpath(text)
        if norm.startswith("/"):
            inside = self._inside(norm)
            if inside is None:
                raise EscapeError(text)
            norm = inside or "."
        if norm == ".." or norm.startswith("../"):
            raise EscapeError(text)
        return "" if norm == "." else norm

    def _inside(self, absolute: str) -> str | None:
        """The part of an absolute path after the root ('' for the root itself), or None when not under it."""
        for base in {str(self.given), str(self.path)}:
            if absolute == base:
                return ""
            if absolute.startswith(base.rstrip("/") + "/"):
                return absolute[len(base.rstrip("/")) + 1 :]
        return None

    # -- resolution ---------------------------------------------------------------------------------

    def open(
        self,
        path: str | os.PathLike[str],
        flags: int,
        mode: int = 0o644,
        *,
        follow: bool = True,
        shown: str | None = None,
    ) -> int:
        """An fd for `path` opened with `flags`, resolved beneath the root; the caller closes it.
        Without `follow`, a symbolic link as the last component is not followed (O_NOFOLLOW)."""
        shown = shown if shown is not None else os.fspath(path)
        rel = self.relative(path)
        flags |= os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
        with reported(shown):
            try:
                if USE_OPENAT2 and openat2_usable():
                    try:
                        return openat2(self.fd, rel or ".", flags, mode)
                    except OSError as exc:
                        # EXDEV: an escape, or an absolute link back inside, which the walk tells apart.
                        # EAGAIN: a concurrent rename while resolving `..`; the walk does not need retries.
                        if exc.errno not in (errno.EXDEV, errno.EAGAIN):
                            raise
                return self._walk_open(rel, flags, mode, follow, shown)
            except OSError as exc:
                if exc.errno == errno.ELOOP and not follow and not isinstance(exc, SafeFSError):
                    raise SafeFSError(shown, A_LINK, errno.ELOOP) from None
                raise

    def _walk_open(self, rel: str, flags: int, mode: int, follow: bool, shown: str) -> int:
        for _ in range(_MAX_HOPS):
            dir_fd, name, _ = self._locate(rel, follow=follow, shown=shown)
            try:
                fd = os.open(name or ".", flags | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP and follow:
                    continue  # it became a link after _locate looked: resolve again
                raise
            finally:
                os.close(dir_fd)
            if flags & os.O_PATH and follow and stat.S_ISLNK(os.fstat(fd).st_mode):
                os.close(fd)  # O_PATH|O_NOFOLLOW opened a link that appeared meanwhile
                continue
            return fd
        raise SafeFSError(shown, "the path kept changing while it was opened", errno.EAGAIN)

    def _locate(
        self, rel: str, *, follow: bool, shown: str, make_dirs: bool = False, fenced: bool = False
    ) -> tuple[int, str, list[str]]:
        """Walk to the directory holding the last component: (an O_PATH fd of it, the last name there, the
        directory's canonical path from the root as a list of names).

        Every step opens one name with O_NOFOLLOW relative to the fd of the previous one, and links are
        read and spliced into the remaining path here, so nothing outside the root is ever opened. The
        name is '' when the path is the root. With `follow`, a last component that is a link is followed.
        With `make_dirs`, missing directories are created (every component but the last). With `fenced`,
        a step onto a path of `self.fence` is refused (SafeFSError EACCES)."""
        fence = self.fence if fenced else frozenset()
        todo = [p for p in reversed(rel.split("/")) if p not in ("", ".")]
        fds, names = [os.open(".", _DIR, dir_fd=self.fd)], []
        hops, via = 0, None  # via: the last link followed, to explain an escape through it
        try:
            while todo:
                name = todo.pop()
                if name == "..":
                    if not names:
                        raise EscapeError(shown, via, None if via else "it leads above the root")
                    os.close(fds.pop())
                    names.pop()
                    continue
                if fence and "/".join([*names, name]) in fence:
                    raise SafeFSError(
                        shown,
                        f"it leads into {'/'.join([*names, name])}, which may not be changed",
                        errno.EACCES,
                    )
                if not todo:
                    target = link_target(name, fds[-1]) if follow else None
                    if target is None:
                        return os.dup(fds[-1]), name, names
                else:
                    target = self._step(name, fds, names, shown, make_dirs)
                    if target is None:
                        continue
                hops += 1
                if hops > _MAX_HOPS:
                    raise SafeFSError(shown, "too many levels of symbolic links", errno.ELOOP)
                via = target
                if target.startswith("/"):
                    inside = self._inside(target)
                    if inside is None:
                        raise EscapeError(shown, target)
                    for fd in fds[1:]:
                        os.close(fd)
                    del fds[1:], names[:]
                    target = inside
                todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
            # The path ended on a directory step (`..`, or a link to the root or to `..`).
            if not names:
                return os.dup(fds[0]), "", []
            return os.dup(fds[-2]), names[-1], names[:-1]
        finally:
            for fd in fds:
                os.close(fd)

    def _step(self, name: str, fds: list[int], names: list[str], shown: str, make_dirs: bool) -> str | None:
        """Descend into the directory `name` (pushed onto fds and names), or return its link target."""
        while True:
            try:
                fd = os.open(name, _DIR, dir_fd=fds[-1])
            except FileNotFoundError:
                if not make_dirs:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fds[-1])
                    if os.geteuid() == 0:
                        with contextlib.suppress(OSError):  # O_DIRECTORY|O_NOFOLLOW: still our directory
                            made = os.open(
                                name,
                                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=fds[-1],
                            )
                            try:
                                inherit_owner(made, fds[-1])
                            finally:
                                os.close(made)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                target = link_target(name, fds[-1])
                if target is None:
                    raise
                return target
            fds.append(fd)
            names.append(name)
            if os.fstat(fd).st_dev != self._dev:
                raise EscapeError(shown, reason="it crosses into another file system")
            return None

    # -- reading ------------------------------------------------------------------------------------

    def stat(
        self, path: str | os.PathLike[str], *, follow: bool = True, shown: str | None = None
    ) -> os.stat_result:
        """stat (lstat without `follow`) of `path`, resolved beneath the root."""
        fd = self.open(path, os.O_PATH | (0 if follow else os.O_NOFOLLOW), follow=follow, shown=shown)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def exists(self, path: str | os.PathLike[str], *, shown: str | None = None) -> bool:
        """Whether `path` exists (False when missing); an escape or another problem still raises."""
        return self.kind(path, shown=shown) is not None

    def is_dir(self, path: str | os.PathLike[str], *, shown: str | None = None) -> bool:
        """Whether `path` is a directory (links inside the root followed)."""
        return self.kind(path, shown=shown) == "dir"

    def kind(self, path: str | os.PathLike[str], *, shown: str | None = None) -> str | None:
        """'dir', 'file' (regular), 'other' (device, socket, FIFO) or None when missing; an escape raises."""
        try:
            mode = self.stat(path, shown=shown).st_mode
        except SafeFSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    def read_bytes(
        self, path: str | os.PathLike[str], *, max_bytes: int, follow: bool = True, shown: str | None = None
    ) -> bytes:
        """The bytes of the regular file `path`; SafeFSError if it is anything else or over `max_bytes`."""
        shown = shown if shown is not None else os.fspath(path)
        fd = self.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, follow=follow, shown=shown)
        try:
            return read_fd(fd, shown, max_bytes)
        finally:
            os.close(fd)

    def read_text(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int,
        encoding: str = "utf-8",
        errors: str = "replace",
        shown: str | None = None,
    ) -> str:
        """`read_bytes` decoded, with universal newlines (`\\r\\n` and `\\r` read as `\\n`) as Path.read_text."""
        text = self.read_bytes(path, max_bytes=max_bytes, shown=shown).decode(encoding, errors)
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text

    def listdir(self, path: str | os.PathLike[str] = "", *, shown: str | None = None) -> list[Entry]:
        """The entries of the directory `path`, sorted by name ('.' and '..' left out)."""
        shown = shown if shown is not None else os.fspath(path)
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK, shown=shown)
        try:
            with reported(shown), os.scandir(fd) as it:
                found = [
                    Entry(
                        e.name,
                        e.is_dir(follow_symlinks=False),
                        e.is_file(follow_symlinks=False),
                        e.is_symlink(),
                    )
                    for e in it
                ]
        finally:
            os.close(fd)
        return sorted(found, key=lambda e: e.name)

    def resolve(self, path: str | os.PathLike[str], *, shown: str | None = None) -> str:
        """The canonical root-relative path of `path` (links inside the root followed; the last component
        need not exist). Informative only: the sandbox may rename things right after."""
        shown = shown if shown is not None else os.fspath(path)
        with reported(shown):
            dir_fd, name, parents = self._locate(self.relative(path), follow=True, shown=shown)
        os.close(dir_fd)
        return "/".join([*parents, name]) if name else "/".join(parents)

    # -- writing ------------------------------------------------------------------------------------

    def mkdirs(self, path: str | os.PathLike[str], *, shown: str | None = None) -> None:
        """Create the directory `path` and its missing parents (like `mkdir -p`), beneath the root."""
        shown = shown if shown is not None else os.fspath(path)
        rel = self.relative(path)
        with reported(shown):
            dir_fd, _, _ = self._locate(f"{rel}/x", follow=False, shown=shown, make_dirs=True, fenced=True)
            os.close(dir_fd)

    def unlink(self, path: str | os.PathLike[str], *, follow: bool = False, shown: str | None = None) -> None:
        """Remove the file `path` (with `follow`, the file a link inside the root leads to, else the link)."""
        shown = shown if shown is not None else os.fspath(path)
        with reported(shown):
            dir_fd, name, _ = self._locate(self.relative(path), follow=follow, shown=shown, fenced=True)
            try:
                if not name:
                    raise SafeFSError(shown, "the root directory cannot be removed", errno.EISDIR)
                os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)

    def write_bytes(
        self,
        path: str | os.PathLike[str],
        data: bytes,
        *,
        create: bool = True,
        exclusive: bool = False,
        mode: int = 0o644,
        follow: bool = True,
        shown: str | None = None,
    ) -> None:
        """Write `data` to the regular file `path`, in place (keeping its mode and owner); a file with more
        than one hard link is replaced by a new inode instead. `create`: make it if missing (with `mode`,
        less the umask); `exclusive`: only make it, SafeFSError EEXIST if it exists."""
        shown = shown if shown is not None else os.fspath(path)
        rel = self.relative(path)
        with reported(shown):
            for _ in range(_MAX_HOPS):
                dir_fd, name, _ = self._locate(rel, follow=follow, shown=shown, fenced=True)
                try:
                    if not name:
                        raise SafeFSError(shown, "is a directory", errno.EISDIR)
                    if write_at(
                        dir_fd,
                        name,
                        data,
                        create=create or exclusive,
                        exclusive=exclusive,
                        mode=mode,
                        shown=shown,
                    ):
                        return
                finally:
                    os.close(dir_fd)
            raise SafeFSError(shown, "the file kept changing while it was written", errno.EAGAIN)
