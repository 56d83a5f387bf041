"""The sandbox's limits that are checked around each command rather than enforced by the kernel alone.

* The run's disk quota (diskquota.py): checked on every tick of a running command, which is stopped
  when the files grow past the limit, and once when it ends.
* The process limit: the kernel refuses the fork (pids cgroup, RLIMIT_NPROC) but the command's exit
  status rarely shows it, so the model is told when the command reached it: the pids cgroup's count of
  refused forks, or else the shell's and Python's fork errors in the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from devloop.runtime.diskquota import DiskQuota
from devloop.runtime.limits import Limits
from devloop.runtime.pidcgroup import PidsCgroup

# What a refused fork or thread looks like in a command's output (bash, Python, C libraries).
_FORK_FAILED = re.compile(
    r"fork: (?:retry: )?Resource temporarily unavailable|\b(?:can't|cannot|could not|unable to) fork\b"
    r"|fork(?:\(\))? failed|can't start new thread|BlockingIOError: \[Errno 11\] Resource temporarily unavailable",
    re.IGNORECASE,
)

_DELETE = (
    "delete files to get below it before continuing (a command that writes more while over it is stopped)"
)


class CommandGuards:
    """The checks for one sandbox. `trees`: what its commands can write; `cgroup`: its pids cgroup."""

    def __init__(self, limits: Limits, trees: Sequence[Path], cgroup: PidsCgroup | None) -> None:
        self.limits = limits
        self.cgroup = cgroup
        self.quota = DiskQuota(limits.disk_bytes, trees) if limits.disk_bytes is not None else None
        self._fork_failures = 0
        self._disk_stop = False

    @property
    def disk_peak_bytes(self) -> int | None:
        """The most the writable files had grown by at any check (None without a disk limit)."""
        return self.quota.peak if self.quota is not None else None

    def rebaseline(self) -> None:
        """Files were added before any command ran (see DiskQuota.rebaseline)."""
        if self.quota is not None:
            self.quota.rebaseline()

    def started(self) -> None:
        """A command is about to run."""
        self._disk_stop = False
        if self.quota is not None:
            self.quota.begin_command()
        if self.cgroup is not None:
            self._fork_failures = self.cgroup.fork_failures()

    def tick(self) -> str | None:
        """Why the running command must stop now (over the disk limit), or None."""
        if self.quota is None:
            return None
        reason = self.quota.check()
        self._disk_stop = reason is not None
        return reason

    def notes(self, output: str) -> list[str]:
        """What to tell the model about the command that just ended."""
        notes = []
        if self.quota is not None:
            if self._disk_stop:
                notes.append(_DELETE)
            elif (over := self.quota.check(final=True)) is not None:
                notes.append(f"{over}: {_DELETE}")
        if self.limits.max_processes is not None:
            refused = self.cgroup.fork_failures() - self._fork_failures if self.cgroup is not None else 0
            if refused > 0:
                notes.append(f"the command reached the sandbox's limit of {self.limits.max_processes} processes; "
                             f"forks failed ({refused:,} refused)")  # fmt: skip
            elif _FORK_FAILED.search(output):
                notes.append(f"the command reached the sandbox's limit of {self.limits.max_processes} processes; "
                             "forks failed (as its output shows)")  # fmt: skip
        return notes
