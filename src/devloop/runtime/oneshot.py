"""One-shot commands beside a runtime's persistent shell (devloop's own bookkeeping, e.g. git)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass
class ExecResult:
    """The outcome of a one-shot command: exit status and captured bytes."""

    returncode: int | None  # None when it was killed at its timeout
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_line(self) -> str:
        """The last line of stderr (or the status), for one-line error messages."""
        said = self.stderr.decode(errors="replace").strip().splitlines()
        if said:
            return said[-1]
        return "timed out" if self.returncode is None else f"exit {self.returncode}"


def run_once(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> ExecResult:
    """Run `argv` in a new session with captured output; at `timeout`, kill its whole session."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env), cwd=cwd, start_new_session=True,
        preexec_fn=preexec_fn, pass_fds=pass_fds, close_fds=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(input, timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what it left running in its session dies with it
    return ExecResult(code, out, err)
