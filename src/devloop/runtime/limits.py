"""Resource limits for a sandboxed shell, and the shell code that applies them inside the sandbox.

The limits are POSIX rlimits set by a tiny `bash -c 'ulimit ...; exec "$@"'` wrapper that runs *inside*
the sandbox just before the persistent shell replaces it. They are therefore inherited by every process
a command starts, and hard (a command cannot raise them: with `--unshare-user` it holds no capability
in the host's user namespace).

Why inside and not in a preexec_fn on the host: RLIMIT_NPROC is checked against every level of the
user-namespace hierarchy, and a new namespace records its creator's NPROC as the ceiling for the level
above it. Set before bwrap creates the namespace, a small NPROC would be compared with *all* of the
user's processes on the host; set inside, it counts only the sandbox's own processes.

What each limit really does (measured on Linux 6.x):

* cpu_seconds (RLIMIT_CPU) is per process: each process a command starts gets that much CPU time.
  The long-lived shell counts too, but it only runs builtins, so it never comes near it.
* memory_bytes (RLIMIT_AS) caps each process's address space; allocations beyond it fail (MemoryError).
* max_file_bytes (RLIMIT_FSIZE): a write past it kills the writer with SIGXFSZ. The command's output log
  is a file too, so this also stops runaway output quickly.
* max_processes (RLIMIT_NPROC) contains a fork bomb for a non-root user. For host root it is never
  enforced (the kernel exempts uid 0, also through a user namespace mapped to it), so a sandbox run by
  root adds a pids cgroup when it can create one (see pidcgroup.py), and otherwise a watchdog that
  stops the command when its process count passes the limit.
* max_output_bytes is enforced by the shell (PersistentShell's output cap), not by the kernel.
* disk_bytes is enforced by the sandbox (diskquota.py): what the files it can write (the workspace, the
  scratch dir) grow by over a run. It also lowers RLIMIT_FSIZE to it, and caps each private tmpfs (/tmp,
  HOME), which is memory, at min(disk_bytes, memory_bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-command resource limits of a sandboxed shell; None means unlimited.

    cpu_seconds: CPU time per process. memory_bytes: address space per process (default 4 GiB).
    max_processes: processes and threads in the sandbox at once. max_output_bytes: a command's combined
    stdout+stderr. max_file_bytes: size of any one file a command writes. disk_bytes: how much the files
    the sandbox can write may grow over the whole run (default 10 GiB).
    """

    cpu_seconds: int | None = None
    memory_bytes: int | None = 4 * GIB
    max_processes: int | None = 2048
    max_output_bytes: int = 256 * MIB
    max_file_bytes: int | None = 1 * GIB
    disk_bytes: int | None = 10 * GIB

    def __post_init__(self) -> None:
        for name in (
            "cpu_seconds",
            "memory_bytes",
            "max_processes",
            "max_output_bytes",
            "max_file_bytes",
            "disk_bytes",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ValueError(f"Limits.{name}: must be a positive integer or None, got {value!r}")

    def ulimit_commands(self) -> list[str]:
        """bash `ulimit` commands setting these limits, soft and hard, e.g. ['ulimit -SH -v 4194304']."""
        cmds: list[str] = []
        if self.cpu_seconds is not None:
            # Hard one second above soft: the soft limit sends SIGXCPU (exit 152, nameable) before the
            # hard one's SIGKILL. Soft first: a hard limit below the current soft one is refused.
            cmds += [f"ulimit -S -t {self.cpu_seconds}", f"ulimit -H -t {self.cpu_seconds + 1}"]
        if self.memory_bytes is not None:
            cmds.append(f"ulimit -SH -v {_kib(self.memory_bytes)}")  # bash counts -v in KiB
        if self.max_processes is not None:
            cmds.append(f"ulimit -SH -u {self.max_processes}")
        if self.file_bytes is not None:
            cmds.append(f"ulimit -SH -f {_kib(self.file_bytes)}")  # KiB too (outside POSIX mode)
        return cmds

    @property
    def file_bytes(self) -> int | None:
        """The RLIMIT_FSIZE applied: max_file_bytes, never above the disk limit (one file cannot be
        bigger than the whole quota)."""
        return _smallest(self.max_file_bytes, self.disk_bytes)

    @property
    def tmpfs_bytes(self) -> int | None:
        """The size cap of each private tmpfs (/tmp, HOME...): min(disk_bytes, memory_bytes). A tmpfs is
        memory that the disk quota does not see, so neither limit may be bypassed through it; None (both
        unlimited) leaves the kernel's default of half the RAM."""
        return _smallest(self.disk_bytes, self.memory_bytes)

    def shell_setup(self) -> str:
        """Shell code a persistent shell runs first, before any command, setting these limits on itself
        (so on everything it starts), or exiting when one cannot be set: the wrapper's effect without
        its bash process. Empty when there are no limits."""
        cmds = [f"builtin {cmd}" for cmd in self.ulimit_commands()]
        return f"{{ {' && '.join(cmds)}; }} || builtin exit 97; " if cmds else ""

    def wrapper_argv(self) -> list[str]:
        """argv that applies the limits and then execs the rest of the argv (put it before the shell)."""
        script = " && ".join([*self.ulimit_commands(), 'exec "$@"'])
        return ["bash", "--noprofile", "--norc", "-c", script, "devloop-limits"]

    def describe(self) -> str:
        """A short human summary, e.g. 'memory 4 GiB, 2048 processes, files 1 GiB, output 256 MiB, disk 10 GiB'."""
        parts = []
        if self.cpu_seconds is not None:
            parts.append(f"cpu {self.cpu_seconds} s")
        if self.memory_bytes is not None:
            parts.append(f"memory {human_bytes(self.memory_bytes)}")
        if self.max_processes is not None:
            parts.append(f"{self.max_processes} processes")
        if self.file_bytes is not None:
            parts.append(f"files {human_bytes(self.file_bytes)}")
        parts.append(f"output {human_bytes(self.max_output_bytes)}")
        if self.disk_bytes is not None:
            parts.append(f"disk {human_bytes(self.disk_bytes)}")
        return ", ".join(parts)


def _kib(n: int) -> int:
    return max(1, -(-n // 1024))


def _smallest(*values: int | None) -> int | None:
    given = [v for v in values if v is not None]
    return min(given) if given else None


def human_bytes(n: int) -> str:
    """1073741824 -> '1 GiB'; 1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:g} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable


def parse_bytes(text: str) -> int:
    """'4G', '512M', '4GiB', '1.5g', '1000000' -> bytes; ValueError with a one-line message otherwise."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"not a positive size: {text!r} (use e.g. 4G, 512M, 1000000)")
    return int(float(match[1]) * _UNITS[match[2] or ""])


def sandbox_limits(memory_limit: str, disk_limit: str = "10G") -> Limits:
    """The Limits for `--memory-limit` and `--disk-limit` (defaults elsewhere); ValueError (one line)
    naming the flag for a bad value."""
    try:
        memory = parse_bytes(memory_limit)
    except ValueError as exc:
        raise ValueError(f"--memory-limit: {exc}") from None
    try:
        disk = parse_limit(disk_limit)
    except ValueError as exc:
        raise ValueError(f"--disk-limit: {exc}") from None
    return Limits(memory_bytes=memory, disk_bytes=disk)


def parse_limit(text: str) -> int | None:
    """A size as parse_bytes, or None for 'none' / 'unlimited' (no limit)."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    try:
        return parse_bytes(text)
    except ValueError:
        raise ValueError(f"not a positive size or none: {text!r} (use e.g. 10G, 512M, none)") from None


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
