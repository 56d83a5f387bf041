"""Making the shell a child subreaper that dies with devloop.

Orphans of a command (double-forked daemons, `(setsid cmd &)`) are re-parented to the nearest living
ancestor that is a child subreaper: with the shell one, they stay in its process tree and die with it.
The parent-death signal (SIGKILL) takes the shell along when devloop itself is killed, even by SIGKILL.
Both flags survive exec.

Two ways to set them. A preexec_fn (preexec) makes Python fork the whole interpreter and run Python code
in the child before the exec: 2-5 ms of the parent's time at every shell start, most of a run's start.
So where Linux's prctl can be reached another way, a launcher sets them: perl (part of every Debian and
Ubuntu base system, and of most others) calls prctl through its `syscall` and execs the shell, and Python
vforks it. The launcher checks that devloop is still its parent once the death signal is set (the
window in which a kill would have gone unnoticed), and exits with a message if anything fails; the
caller then starts the shell with the preexec_fn instead and stops using the launcher (launcher_failed).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import shutil
import signal
import sys
from collections.abc import Callable
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

# prctl's system call number, for the architectures whose number is known here (others use preexec).
_PRCTL_NR = {"x86_64": 157, "aarch64": 167, "arm64": 167, "riscv64": 167, "loongarch64": 167}

# argv: devloop's pid, then the program and its arguments. Every failure is a message and a non-zero exit
# before the program runs, so the caller never gets a shell without both flags.
_PERL = (
    "my $parent = shift;"
    " syscall({nr}, {subreaper}, 1, 0, 0, 0) == 0 or die qq(devloop launcher: PR_SET_CHILD_SUBREAPER: $!\\n);"
    " syscall({nr}, {pdeathsig}, {kill}, 0, 0, 0) == 0 or die qq(devloop launcher: PR_SET_PDEATHSIG: $!\\n);"
    " getppid() == $parent or die qq(devloop launcher: devloop has gone\\n);"
    " exec {{ $ARGV[0] }} @ARGV; die qq(devloop launcher: cannot run $ARGV[0]: $!\\n);"
)

_failed = False


def preexec(then: Callable[[], Any] | None = None) -> Callable[[], None]:
    """A preexec_fn setting both flags in the forked child (Linux; elsewhere the shell relies on
    sessions alone), then calling `then`."""

    def run() -> None:
        with contextlib.suppress(Exception):  # not Linux, or no libc: fall back to sessions only
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if then is not None:
            then()

    return run


def launcher() -> list[str] | None:
    """The programs to put before the shell's argv so that it starts with both flags set and without a
    preexec_fn, or None (not Linux, an architecture whose prctl number is not known here, no perl, or an
    earlier launch that failed): then use preexec()."""
    code = _launcher_code()
    if code is None or _failed:
        return None
    return [*code, str(os.getpid())]


def launcher_failed() -> None:
    """A shell started through launcher() did not come up: from now on this process uses preexec()."""
    global _failed
    _failed = True


@functools.cache
def _launcher_code() -> tuple[str, ...] | None:
    nr = _PRCTL_NR.get(platform.machine()) if sys.platform == "linux" else None
    perl = shutil.which("perl") if nr is not None else None
    if nr is None or perl is None:
        return None
    code = _PERL.format(
        nr=nr, subreaper=PR_SET_CHILD_SUBREAPER, pdeathsig=PR_SET_PDEATHSIG, kill=int(signal.SIGKILL)
    )
    return (os.path.realpath(perl), "-e", code)
