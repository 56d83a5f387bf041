"""Who a sandboxed process is on the host: never root.

A user namespace alone does not demote root: bwrap started by root maps the sandbox's uid 0 to the
host's uid 0, and the kernel checks files such as /proc/sys/kernel/core_pattern against that host uid.
So when devloop runs as root, every sandbox is started as an unprivileged host user (default `nobody`,
65534; `DEVLOOP_SANDBOX_UID` / `DEVLOOP_SANDBOX_GID` choose another), and the directories the sandbox
must write are handed to that user first. A non-root user's sandboxes run as that user, in their own
user namespace with every capability dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UID_ENV = "DEVLOOP_SANDBOX_UID"
GID_ENV = "DEVLOOP_SANDBOX_GID"
NOBODY = 65534

_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class SandboxUser:
    """The host uid/gid sandboxed processes run as; `demote` when that means leaving root."""

    uid: int
    gid: int
    demote: bool

    def owns(self, path: Path) -> bool:
        """Whether `path` (not followed) already belongs to this user."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return st.st_uid == self.uid


def sandbox_user() -> SandboxUser:
    """The identity for sandboxes started by this process (see the module docstring).

    Raises ValueError for a DEVLOOP_SANDBOX_UID/GID that is not a positive integer: running a sandbox
    as root is exactly what this module exists to prevent."""
    if os.geteuid() != 0:
        return SandboxUser(os.getuid(), os.getgid(), demote=False)
    uid = _id_from_env(UID_ENV, NOBODY)
    gid = _id_from_env(GID_ENV, uid if UID_ENV in os.environ else NOBODY)
    return SandboxUser(uid, gid, demote=True)


def _id_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{name}={raw!r}: the sandbox's host id must be a positive integer (never 0, root)")
    return int(raw)


def hand_over(path: Path, user: SandboxUser | None = None, *, dirs_only: bool = False) -> None:
    """Make the tree at `path` writable by the sandbox user: chown every directory (and, unless
    `dirs_only`, every file) to it, never following a symbolic link. A no-op when not demoting.

    `dirs_only` is for trees of hard links into a cache: the sandbox may then add, remove and rename
    entries, but a file it did not create stays root's and cannot be written through the link."""
    user = user or sandbox_user()
    if not user.demote:
        return
    _chown_tree(path, user.uid, user.gid, dirs_only=dirs_only)


def take_back(path: Path, uid: int | None = None, gid: int | None = None) -> None:
    """Give a tree the sandbox wrote back to this process's user (e.g. a kept workspace)."""
    if os.geteuid() != 0:
        return
    _chown_tree(path, os.getuid() if uid is None else uid, os.getgid() if gid is None else gid)


def _chown_tree(path: Path, uid: int, gid: int, *, dirs_only: bool = False) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, uid, gid, follow_symlinks=False)
    for top, dirs, files in os.walk(path, followlinks=False):
        for name in dirs:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)
        if dirs_only:
            continue
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)


def is_private_dir(path: Path) -> bool:
    """True when `path` is a real directory (not a link) that only this process's user can write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def launcher_argv(join: Path | None = None) -> list[str] | None:
    """What launcher_preexec does, as programs put before the sandbox's launcher: `setpriv` sets
    no_new_privs and the parent-death signal and, with `join` (a cgroup's join file), a shell writes
    itself there, then each execs the next. None where setpriv cannot set the signal (util-linux before
    2.33): use launcher_preexec. A preexec_fn makes Python fork the whole interpreter for the child, not
    vfork it: several milliseconds of a large process's time, at every sandbox start."""
    setpriv = _setpriv_with_pdeathsig()
    if setpriv is None:
        return None
    argv = [setpriv, "--pdeathsig", "KILL", "--no-new-privs", "--"]
    if join is not None:  # "0": the writer itself (see PidsCgroup.join_file)
        argv += ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(join)]
    return argv


@functools.cache
def _setpriv_with_pdeathsig() -> str | None:
    found = shutil.which("setpriv")
    if found is None:
        return None
    try:
        said = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if "--pdeathsig" in said.stdout and os.path.exists("/bin/sh") else None


def launcher_preexec(then: Callable[[], Any] | None = None) -> Callable[[], None]:
    """A preexec_fn for a sandbox's launcher: run `then` (e.g. join a cgroup, which needs root), then
    set no_new_privs and ask for SIGKILL when devloop dies, so a `kill -9` of devloop takes the
    sandbox along. The identity change happens inside the sandbox (setpriv), after the mounts."""

    def preexec() -> None:
        if then is not None:
            then()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec
