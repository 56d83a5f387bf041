"""Finding and killing the processes a shell started, by reading /proc.

A command can leave processes behind in two ways that a plain `killpg` misses: background jobs whose
parent exited (re-parented away from the shell, but still in its session) and, inside a sandbox, processes
in a session of their own (still descendants of the sandbox's init). So a shell's processes are taken to
be the union of its sessions' members and the descendants of the process we spawned.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

_PROC = "/proc"


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    sid: int
    state: str


def read_proc(pid: int) -> ProcInfo | None:
    """One process's parent, session and state, or None if it is gone (or /proc is unreadable)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # The command name sits in parentheses and may itself contain spaces or ')': split after the last one.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcInfo(pid=pid, ppid=int(fields[1]), sid=int(fields[3]), state=fields[0].decode())
    except (IndexError, ValueError):
        return None


def snapshot(*, zombies: bool = False) -> dict[int, ProcInfo]:
    """Every process visible in /proc; zombies (dead, not yet reaped) only if asked for."""
    table: dict[int, ProcInfo] = {}
    try:
        names = os.listdir(_PROC)
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        info = read_proc(int(name))
        if info is not None and (zombies or info.state not in ("Z", "X")):
            table[info.pid] = info
    return table


def table_of(pids: Iterable[int]) -> dict[int, ProcInfo]:
    """`snapshot()` restricted to `pids` (those still alive and not zombies): a handful of reads where
    the caller knows which processes can matter, instead of one per process on the machine."""
    table: dict[int, ProcInfo] = {}
    for pid in pids:
        info = read_proc(pid)
        if info is not None and info.state not in ("Z", "X"):
            table[pid] = info
    return table


@functools.cache
def children_lists() -> bool:
    """Whether the kernel keeps a children list per thread in /proc (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"{_PROC}/{os.getpid()}/task/{os.getpid()}/children")


@functools.cache
def subreapers() -> bool:
    """Whether a process can be made a child subreaper here (Linux's prctl, reached through libc)."""
    try:
        flag = ctypes.c_int()
        return (
            ctypes.CDLL(None, use_errno=True).prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
        )
    except (OSError, AttributeError):
        return False


_PR_GET_CHILD_SUBREAPER = 37


def subtree(root: int) -> dict[int, ProcInfo] | None:
    """`root` and its descendants (zombies left out), read through the threads' children lists: a few
    reads instead of one per process on the machine. None where the kernel keeps no such lists. A list
    is exact only while its process cannot fork, so a caller that must see everything stops them first."""
    if not children_lists():
        return None
    table: dict[int, ProcInfo] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        info = read_proc(pid) if pid not in table else None
        if info is None or info.state in ("Z", "X"):
            continue
        table[pid] = info
        try:
            tids = os.listdir(f"{_PROC}/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"{_PROC}/{pid}/task/{tid}/children", "rb") as fh:
                    stack.extend(int(child) for child in fh.read().split())
            except (OSError, ValueError):
                continue
    return table


def descendants(root: int, table: dict[int, ProcInfo]) -> set[int]:
    """The pids below `root` in the parent tree (root excluded)."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def family(root: int, sids: Iterable[int], table: dict[int, ProcInfo] | None = None) -> set[int]:
    """`root`, its descendants, and every member of the sessions `sids`."""
    table = snapshot() if table is None else table
    sid_set = set(sids)
    members = {info.pid for info in table.values() if info.sid in sid_set}
    out = members | descendants(root, table)
    if root in table:
        out.add(root)
    return out


def kill_family(
    root: int, sids: Iterable[int], *, spare: Iterable[int] = (), settle_s: float = 2.0
) -> set[int]:
    """SIGKILL `family(root, sids)` except `spare`, repeating until none is left (a dying tree may
    still fork) or `settle_s` runs out. Returns every pid it signalled."""
    sid_list = list(sids)
    spare_set = set(spare)
    own = os.getpid()
    signalled: set[int] = set()
    deadline = time.monotonic() + settle_s
    pause = 0.0005
    while True:
        targets = family(root, sid_list) - spare_set - {own}
        if not targets:
            return signalled
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            signalled.add(pid)
        if time.monotonic() >= deadline:
            return signalled
        # Killed processes stay visible until their parent reaps them, usually within a millisecond:
        # look again soon, then less often (a fixed 5 ms wait was most of a sandbox's close).
        time.sleep(pause)
        pause = min(pause * 2, 0.005)
