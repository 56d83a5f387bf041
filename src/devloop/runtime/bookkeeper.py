"""A long-lived sandbox for devloop's own commands on model-written trees (its bookkeeping git).

A one-shot sandbox per command costs two bwraps and a setpriv (~30 ms), paid at every step for the patch.
The bookkeeper is a persistent shell in its own sandbox, made like the agent's but with devloop's private
git dir bound read-write, that runs only argv devloop builds (every word quoted): the model's processes
live in another sandbox and never reach it. Input goes through a file in the host-only command dir;
stdout and stderr come back as bytes from files read without following links.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bash_process import ShellSession
from devloop.runtime.oneshot import ExecResult
from devloop.runtime.shell import PersistentShell

# Large enough for any patch; the shell's output cap still stops a runaway.
_READ_CAP = 1 << 30


class Bookkeeper(PersistentShell):
    """A PersistentShell (spawned with a sandbox prefix) that runs argv and returns ExecResult."""

    # Neither a subreaper nor a parent-death signal: the sandbox's PID namespace reaps its orphans, and
    # the signal would fire when the thread that started the keeper ends (patches are computed on a
    # worker thread). Nothing then runs in the child before the exec, so Python vforks it.
    _subreaper = False

    def __init__(self, root: Path, *, spawn_prefix: Sequence[str], env: Mapping[str, str], scratch_dir: Path,
                 preexec_fn: Any = None) -> None:  # fmt: skip
        super().__init__(root, spawn_prefix=spawn_prefix, env=env, scratch_dir=scratch_dir, preexec_fn=preexec_fn,
                         read_cap=_READ_CAP)  # fmt: skip

    def _may_have_leftovers(self, session: ShellSession) -> bool:
        return False  # only devloop's git runs here, in the foreground; close() ends anything else

    def exec_argv(self, argv: Sequence[str], *, input: bytes | None, timeout: float, env: Mapping[str, str],
                  cwd: Path) -> ExecResult:  # fmt: skip
        """Run `argv` in `cwd` with `env` added to the shell's environment, stdin from `input`."""
        token = secrets.token_hex(8)
        # No input, no file: most of devloop's git runs read nothing, and a file is two directory
        # changes (a millisecond on a slow disk, at every step's patch).
        stdin = self.cmd_dir / f"in-{token}" if input else None
        err = self.out_dir / f"err-{token}"
        if stdin is not None:
            stdin.write_bytes(input or b"")
        exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in env.items())
        command = (
            f"builtin cd -- {shlex.quote(str(cwd))} && ( {exports}exec {shlex.join(argv)} )"
            f" <{shlex.quote(str(stdin or '/dev/null'))} 2>{shlex.quote(str(err))}"
        )
        logged: Path | None = None
        try:
            result = self.run(command, timeout)
            logged = Path(result.output_path) if result.output_path else None
            out = _read_bytes(logged) if logged else b""
            return ExecResult(None if result.timed_out else result.exit_code, out, _read_bytes(err))
        finally:
            for path in (stdin, err, logged):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, only if it is a regular file with one link, opened without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise RuntimeFailure(f"the bookkeeping output {path} was replaced")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
