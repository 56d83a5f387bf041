"""The fd-level half of `devloop.safefs`: its errors, the openat2 system call, and reading, writing and
replacing a file once its directory is open (no path resolution here)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass

NOT_REGULAR = "not a regular file (a device, socket or pipe)"
A_LINK = "it is a symbolic link, which is not followed here"

_SYS_OPENAT2 = 437  # the same number on every Linux architecture (a syscall added after 5.1)
_RESOLVE_NO_XDEV, _RESOLVE_NO_MAGICLINKS, _RESOLVE_BENEATH = 0x01, 0x02, 0x08
# Never above the start directory, no /proc magic links, no mount crossings.
RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS | _RESOLVE_NO_XDEV
_openat2_ok: bool | None = None  # None: not tried yet


class SafeFSError(OSError):
    """A path that cannot be used: missing, outside the root, not a regular file, too large...

    `strerror` is the reason alone, `filename` the path as the caller showed it; str() joins them."""

    def __init__(self, shown: str, reason: str, err: int = errno.EINVAL, *, size: int | None = None) -> None:
        super().__init__(err, reason, shown)
        self.shown, self.reason, self.size = shown, reason, size

    def __str__(self) -> str:
        return f"{self.shown}: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.shown, self.reason, self.errno), {"size": self.size})


class EscapeError(SafeFSError):
    """The path leads outside the root: through `..`, an absolute path, a symbolic link or a mount."""

    def __init__(self, shown: str, target: str | None = None, reason: str | None = None) -> None:
        why = reason or "it leads outside the root" + (
            f" through a symbolic link to {target}" if target else ""
        )
        super().__init__(shown, why, errno.EXDEV)
        self.target = target

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.shown, self.target, self.reason))


@dataclass(frozen=True)
class Entry:
    """One directory entry, as lstat sees it (a link is a link, never its target)."""

    name: str
    is_dir: bool
    is_file: bool
    is_symlink: bool


@contextlib.contextmanager
def reported(shown: str) -> Iterator[None]:
    """OSError from a system call becomes SafeFSError naming `shown` (a SafeFSError passes unchanged)."""
    try:
        yield
    except SafeFSError:
        raise
    except OSError as exc:
        reason = NOT_REGULAR if exc.errno == errno.ENXIO else (exc.strerror or str(exc))
        raise SafeFSError(shown, reason, exc.errno or 0) from None


def link_target(name: str, dir_fd: int) -> str | None:
    """The target of the link `name` in `dir_fd`, or None when it is not a link (or does not exist)."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def read_fd(fd: int, shown: str, max_bytes: int) -> bytes:
    """The content of the open regular file `fd`; SafeFSError for anything else or over `max_bytes`."""
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise SafeFSError(shown, "is a directory", errno.EISDIR)
    if not stat.S_ISREG(st.st_mode):
        raise SafeFSError(shown, NOT_REGULAR, errno.EINVAL)
    if st.st_size > max_bytes:
        raise SafeFSError(
            shown,
            f"too large ({st.st_size:,} bytes; the limit is {max_bytes:,})",
            errno.EFBIG,
            size=st.st_size,
        )
    chunks, total = [], 0
    while chunk := os.read(fd, max(65536, min(max_bytes + 1 - total, 1 << 24))):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:  # it grew while being read
            raise SafeFSError(shown, f"too large (over {max_bytes:,} bytes)", errno.EFBIG, size=total)
    return b"".join(chunks)


def write_at(
    dir_fd: int, name: str, data: bytes, *, create: bool, exclusive: bool, mode: int, shown: str
) -> bool:
    """Write `name` in `dir_fd`; False when it changed under us (became a link, appeared): resolve again."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | (os.O_CREAT | os.O_EXCL if exclusive else 0), mode, dir_fd=dir_fd)
        made = exclusive
    except FileExistsError:
        raise SafeFSError(shown, "already exists", errno.EEXIST) from None
    except FileNotFoundError:
        if not create:
            raise
        try:
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=dir_fd)
        except FileExistsError:
            return False
        made = True
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SafeFSError(shown, NOT_REGULAR, errno.EINVAL)
        if made:
            inherit_owner(fd, dir_fd)
        if st.st_nlink > 1:
            _replace(dir_fd, name, data, st)
            return True
        os.ftruncate(fd, 0)
        _write_all(fd, data)
    finally:
        os.close(fd)
    return True


def _replace(dir_fd: int, name: str, data: bytes, old: os.stat_result) -> None:
    """Write a new inode with `old`'s mode and owner, then rename it over `name` (the same directory)."""
    tmp = f".devloop-{secrets.token_hex(8)}.tmp"  # short, so that a 255-byte name still has a sibling
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
    )
    try:
        try:
            if os.geteuid() == 0:
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def inherit_owner(fd: int, dir_fd: int) -> None:
    """As root, give the file or directory just made (open as `fd`, so never another inode the name may
    meanwhile lead to) the owner of its directory: in a workspace handed over to the sandbox user, the
    sandbox can then change what the host made for it."""
    if os.geteuid() != 0:
        return
    parent = os.fstat(dir_fd)
    with contextlib.suppress(OSError):
        os.fchown(fd, parent.st_uid, parent.st_gid)


def openat2_usable() -> bool:
    """Whether this kernel has openat2 (Linux >= 5.6) and lets this process call it; probed once."""
    global _openat2_ok
    if _openat2_ok is None:
        _openat2_ok = sys.platform == "linux"
        if _openat2_ok:
            try:
                os.close(openat2(-100, "/", os.O_PATH | os.O_CLOEXEC, 0, 0))
            except OSError:
                _openat2_ok = False  # ENOSYS before Linux 5.6, EPERM under some seccomp filters
    return _openat2_ok


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None


def openat2(dir_fd: int, path: str, flags: int, mode: int, resolve: int = RESOLVE) -> int:
    """openat2(2) through ctypes: an fd for `path` relative to `dir_fd`, resolved under `resolve` rules."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    # openat2 rejects a mode without O_CREAT/O_TMPFILE, unlike openat.
    creates = flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE
    how = _OpenHow(flags, mode if creates else 0, resolve)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dir_fd),
        os.fsencode(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)
