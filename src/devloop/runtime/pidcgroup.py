"""A pids cgroup for one sandbox: the fork-bomb guard that works for root, where RLIMIT_NPROC does not.

Created below this process's own cgroup when the host lets us (root with cgroup v1's pids hierarchy,
or a cgroup v2 subtree delegated to us with the pids controller); `create` returns None otherwise and
the sandbox falls back to RLIMIT_NPROC and a watchdog. The sandbox process joins it from its preexec_fn,
so every process it ever starts is counted, and `kill_all` finds each one, even one that escaped the
shell's process tree.

A cgroup's name carries its owner, `devloop-<pid>-<start time>-<random>`, so that the cgroups of a run
killed with SIGKILL (and any process still in them) are removed by the next run's `sweep_cgroups`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

_ROOT = Path("/sys/fs/cgroup")
PREFIX = "devloop-"
# devloop-<pid>-<start>-<hex>; cgroups made before owners carried a start time: devloop-<pid>-<hex>.
_NAME = re.compile(r"devloop-(\d+)-(?:(\d+)-)?[0-9a-f]{8}")


def _own_paths() -> dict[str, str]:
    """{'pids': '/a/b'} for v1 hierarchies, {'': '/x'} for the v2 one, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _candidates() -> list[Path]:
    """Directories under which a pids-limited child cgroup may be made, best first."""
    own = _own_paths()
    found = []
    if "pids" in own:
        found.append(_ROOT / "pids" / own["pids"].lstrip("/"))
    if "" in own:
        found.append(_ROOT / own[""].lstrip("/"))
    return found


class PidsCgroup:
    """One cgroup with `pids.max` set; processes join with `joiner()` run in a child before exec."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        """A fresh cgroup limited to `limit` tasks, or None where none can be made here."""
        from devloop.runtime.stale import start_time

        pid = os.getpid()
        for parent in _candidates():
            path = parent / f"{PREFIX}{pid}-{start_time(pid)}-{secrets.token_hex(4)}"
            try:
                path.mkdir()
            except OSError:
                continue
            group = cls(path)
            try:
                if not (path / "pids.max").exists():  # v2 without pids enabled for children: try to enable
                    (parent / "cgroup.subtree_control").write_text("+pids")
                (path / "pids.max").write_text(str(limit))
            except OSError:
                group.remove()
                continue
            return group
        return None

    @property
    def join_file(self) -> Path:
        """Where a process writes itself to join: on cgroup v1 `tasks`, not `cgroup.procs`. A child is
        single-threaded right after the fork, so moving its one thread moves the whole process, and the
        kernel moves a thread that writes itself there without the global threadgroup lock, whose RCU
        grace period made each `cgroup.procs` join cost 6-10 ms. cgroup v2 has only `cgroup.procs`."""
        tasks = self.path / "tasks"
        return tasks if tasks.exists() else self.path / "cgroup.procs"

    def joiner(self) -> Callable[[], None]:
        """A preexec_fn moving the new process into this cgroup (async-signal-safe enough: raw os calls)."""
        procs_file = str(self.join_file)

        def join() -> None:
            fd = os.open(procs_file, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)

        return join

    def pids(self) -> set[int]:
        """The processes in the cgroup now (v1 lists tasks per process in cgroup.procs)."""
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return set()
        return {int(word) for word in text.split()}

    def fork_failures(self) -> int:
        """How many times a fork or clone failed here for want of pids (the `max` count in pids.events)."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def current(self) -> int:
        """Tasks (processes and threads) counted against pids.max."""
        try:
            return int((self.path / "pids.current").read_text())
        except (OSError, ValueError):
            return len(self.pids())

    def kill_all(self, within: float = 3.0) -> bool:
        """SIGKILL every process in the cgroup until it is empty; False if some survived `within` s."""
        kill_file = self.path / "cgroup.kill"  # v2, Linux 5.14+: atomic, beats a forking tree
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
        deadline = time.monotonic() + within
        pause = 0.0005
        while True:
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)  # SIGKILLed tasks leave within a millisecond or so
            pause = min(pause * 2, 0.005)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup (idempotent; a non-empty cgroup is retried briefly)."""
        if not self.path.exists():
            return
        self.kill_all()
        deadline = time.monotonic() + 2.0
        pause = 0.0005
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # killed tasks not yet reaped by their parent
                if time.monotonic() > deadline:
                    return
                time.sleep(pause)
                pause = min(pause * 2, 0.01)


def sweep_cgroups() -> list[Path]:
    """Kill and remove the devloop cgroups (beside ours) whose owner process is dead; the removed paths."""
    from devloop.runtime.stale import is_dead, start_time

    removed = []
    for parent in _candidates():
        try:
            names = [name for name in os.listdir(parent) if name.startswith(PREFIX)]
        except OSError:
            continue
        for name in names:
            match = _NAME.fullmatch(name)
            if match is None:
                continue
            pid, started = int(match[1]), match[2]
            dead = is_dead(pid, int(started)) if started is not None else start_time(pid) is None
            if dead:
                PidsCgroup(parent / name).remove()
                removed.append(parent / name)
    return removed
