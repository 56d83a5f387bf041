"""Leftovers of dead runs: temp dirs marked with their owner, and removed once the owner is gone.

A run killed with SIGKILL cannot clean up after itself, so what it leaves in the temp dir (a workspace
`devloop-ws-*`, a scratch dir `devloop-sandbox-*` / `devloop-shell-*`: any `devloop-*` dir) carries an owner
file: the creating process's pid, its start time (from /proc/<pid>/stat, so a reused pid is not taken
for the owner), the boot id and its pid namespace. The first runtime a process starts sweeps the temp
dir once: a marked dir whose owner is provably dead is removed. Anything unmarked, marked by another
user, or whose owner may be alive (or cannot be checked from here) is left alone. The cgroups have the
owner in their name instead (pidcgroup.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

OWNER_FILE = ".devloop-owner"
PREFIX = "devloop-"  # only a dir with an owner record is ever removed, so one prefix is enough

_swept = False
_sweep_lock = threading.Lock()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None if it is
    gone or a zombie (dead, not yet reaped), -1 if it cannot be read (it may be alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError:
        return -1  # exists but unreadable (hidepid)
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return None if fields[0] in (b"Z", b"X") else int(fields[19])
    except (IndexError, ValueError):
        return -1


@functools.cache  # one boot per process lifetime; read for every owner record and check
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"


@functools.cache  # a process never changes its PID namespace
def _pid_ns() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "?"


def owner_record() -> str:
    """This process as an owner: 'pid start boot-id pid-namespace'."""
    pid = os.getpid()
    return f"{pid} {start_time(pid)} {_boot_id()} {_pid_ns()}"


def is_dead(pid: int, started: int) -> bool:
    """True only when the process `pid` that started at `started` is certainly gone (here, this boot)."""
    now = start_time(pid)
    return now is None or (now >= 0 and now != started)


def _record_is_dead(text: str) -> bool:
    parts = text.split()
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].lstrip("-").isdigit():
        return False  # not ours, or half written: leave it
    pid, started, boot, ns = int(parts[0]), int(parts[1]), parts[2], parts[3]
    if boot != _boot_id():
        return boot != "?" and _boot_id() != "?"  # a previous boot's owner is dead
    if ns != _pid_ns():
        return False  # another PID namespace's process: not ours to judge
    return started >= 0 and is_dead(pid, started)


def mark_owner(directory: Path) -> None:
    """Write the owner file into a directory this process just created (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)  # fmt: skip
        try:
            os.write(fd, (owner_record() + "\n").encode())
        finally:
            os.close(fd)


def disown(directory: Path) -> None:
    """Remove the owner file: the directory is kept on purpose (`--keep-workspace`) and no sweep may take it."""
    with contextlib.suppress(OSError):
        os.unlink(directory / OWNER_FILE)


def dead_owner(directory: Path) -> bool:
    """True when `directory` is a real directory of this user, marked by an owner that is dead."""
    try:
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        fd = os.open(directory / OWNER_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        text = os.read(fd, 256).decode(errors="replace")
    except OSError:
        return False
    finally:
        os.close(fd)
    return _record_is_dead(text)


def sweep_temp_dirs(parent: Path | None = None) -> list[Path]:
    """Remove the devloop temp dirs under `parent` (default: the temp dir) whose owner is dead."""
    where = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        with os.scandir(where) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = where / name
        if dead_owner(path):
            shutil.rmtree(path, ignore_errors=True)  # fd-based on Linux: never follows a link inside
            removed.append(path)
    return removed


def sweep_once() -> None:
    """Sweep the temp dir and the cgroups of dead runs, the first time this process asks (cheap: one
    listing of each). Never raises."""
    global _swept
    with _sweep_lock:
        if _swept:
            return
        _swept = True
    from devloop.runtime.pidcgroup import sweep_cgroups

    with contextlib.suppress(Exception):
        sweep_temp_dirs()
    with contextlib.suppress(Exception):
        sweep_cgroups()
