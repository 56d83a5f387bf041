"""Race-free access to files beneath a root directory that a hostile process may be changing.

The workspace and the scratch dir are written by the sandbox while the host reads and edits them, so a
check such as `realpath(p).is_relative_to(root)` followed by `open(p)` races: the sandbox can swap a
directory for a symbolic link between the two. Here the root is opened once as a directory fd and every
path is resolved relative to it by the kernel: `openat2(2)` with RESOLVE_BENEATH (Linux >= 5.6) refuses
any step out of the root, whatever happens meanwhile. Without openat2, or when it refuses an absolute
link, a userspace walk opens one component at a time with O_NOFOLLOW relative to the previous one and
reads and follows each link itself, again never leaving the root. Symbolic links that stay inside the
root work; a link out of it, `..` above it or a mount crossing is an `EscapeError`.

Files are opened with O_NONBLOCK and checked with fstat, so a FIFO, device or socket is refused at once
rather than blocking the host. A write never reaches another file through a hard link: a file with more
than one link is replaced by a new inode. Every problem is a `SafeFSError` (an OSError) whose message
names the path as the caller showed it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from devloop.safefs.beneath import SafeRoot
from devloop.safefs.fdops import A_LINK, NOT_REGULAR, Entry, EscapeError, SafeFSError, read_fd, reported

__all__ = [
    "A_LINK", "NOT_REGULAR", "Entry", "EscapeError", "SafeFSError", "SafeRoot", "is_file", "read_bytes", "read_regular_file",
    "read_text", "read_without_links", "stat_path", "write_bytes",
]  # fmt: skip


@contextlib.contextmanager
def _root(root: str | os.PathLike[str] | SafeRoot) -> Iterator[SafeRoot]:
    if isinstance(root, SafeRoot):
        yield root
        return
    with SafeRoot(root) as opened:
        yield opened


def read_bytes(
    root: str | os.PathLike[str] | SafeRoot, rel: str | os.PathLike[str], *, max_bytes: int
) -> bytes:
    """`SafeRoot(root).read_bytes(rel)`: a regular file beneath `root`, at most `max_bytes`."""
    with _root(root) as r:
        return r.read_bytes(rel, max_bytes=max_bytes)


def read_text(
    root: str | os.PathLike[str] | SafeRoot,
    rel: str | os.PathLike[str],
    *,
    max_bytes: int,
    encoding: str = "utf-8",
    errors: str = "replace",
) -> str:
    """`read_bytes` decoded (undecodable bytes replaced by default), with universal newlines."""
    with _root(root) as r:
        return r.read_text(rel, max_bytes=max_bytes, encoding=encoding, errors=errors)


def write_bytes(
    root: str | os.PathLike[str] | SafeRoot,
    rel: str | os.PathLike[str],
    data: bytes,
    *,
    create: bool = True,
    exclusive: bool = False,
    mode: int = 0o644,
) -> None:
    """`SafeRoot(root).write_bytes(...)`."""
    with _root(root) as r:
        r.write_bytes(rel, data, create=create, exclusive=exclusive, mode=mode)


def stat_path(root: str | os.PathLike[str] | SafeRoot, rel: str | os.PathLike[str]) -> os.stat_result:
    """`SafeRoot(root).stat(rel)`: links inside the root followed, SafeFSError for one leading out."""
    with _root(root) as r:
        return r.stat(rel)


def is_file(root: str | os.PathLike[str] | SafeRoot, rel: str | os.PathLike[str]) -> bool:
    """Whether `rel` is a regular file beneath `root`; False when missing, outside it or unreadable."""
    try:
        with _root(root) as r:
            return r.kind(rel) == "file"
    except SafeFSError:
        return False


def read_regular_file(dir_path: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    """The bytes of `name` in a host-made directory the sandbox can write (e.g. a test report in the
    scratch dir). Refuses links, anything but a regular file, hard links (st_nlink > 1) and files over
    `max_bytes`; never blocks. SafeFSError (errno ENOENT when missing)."""
    shown = os.path.join(os.fspath(dir_path), name)
    if not name or "/" in name or name in (".", ".."):
        raise SafeFSError(shown, "not a plain file name")
    with reported(shown):
        dir_fd = os.open(dir_path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SafeFSError(shown, A_LINK, errno.ELOOP) from None
            raise
        finally:
            os.close(dir_fd)
        try:
            if os.fstat(fd).st_nlink > 1:
                raise SafeFSError(shown, "has other hard links, so it may be another file", errno.EMLINK)
            return read_fd(fd, shown, max_bytes)
        finally:
            os.close(fd)


def read_without_links(root: str | os.PathLike[str], rel: str, max_bytes: int) -> bytes:
    """The regular file `rel` beneath `root` reached without following any symbolic link on the way (each
    component opened with O_NOFOLLOW from the previous one): for files that must be the ones a person put
    at that path, never another file a link there leads to. SafeFSError (errno ELOOP for a link)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SafeFSError(rel, "not a plain relative path")
    with reported(rel):
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for i, name in enumerate(parts):
                last = i == len(parts) - 1
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                flags |= os.O_NONBLOCK | os.O_NOCTTY if last else os.O_DIRECTORY
                try:
                    step = os.open(name, flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(
                        os.path.join(os.fspath(root), *parts[: i + 1])
                    ):
                        raise SafeFSError(rel, A_LINK, errno.ELOOP) from None
                    raise
                os.close(fd)
                fd = step
            return read_fd(fd, rel, max_bytes)
        finally:
            os.close(fd)
