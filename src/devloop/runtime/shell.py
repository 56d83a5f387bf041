"""PersistentShell: one long-lived bash session that runs the agent's commands one at a time.

Each command is written to a file and run as `source FILE` inside a brace group whose stdin is /dev/null
and whose stdout+stderr go to a per-command log file; then the shell prints a sentinel record (random
nonce, exit status, cwd) on its own stdout, which the host waits for. Consequences, all deliberate:

* a syntax error or an unbalanced quote ends that `source`, never the session;
* a command reading stdin gets EOF at once instead of hanging;
* background jobs holding the log file open cannot stall the host (it waits on the sentinel, not on EOF);
* cwd, variables, functions and aliases persist (one shell), also past a stopped command (timeout, a
  limit): the shell is paused while its processes die, then a trap returns it from the command file.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devloop.runtime import procs
from devloop.runtime import subreaper as reaping
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bash_process import Record, ShellSession, Wake, command_line, rewrite_file, setup_line
from devloop.runtime.oneshot import ExecResult, run_once
from devloop.runtime.output import DEFAULT_READ_CAP, read_capped
from devloop.runtime.sandbox_env import shell_env
from devloop.runtime.scratch import ShellResources, make_scratch
from devloop.runtime.stale import sweep_once
from devloop.types import CommandResult

SHELL_ARGV: tuple[str, ...] = ("bash", "--noprofile", "--norc")

# After killing a timed-out command, how long the shell gets to print its sentinel before we decide
# the shell itself is stuck (a loop made of builtins has no child to kill).
KILL_GRACE_S = 1.5
# A command whose output file passes this size is stopped: nothing useful prints that much.
DEFAULT_MAX_OUTPUT_BYTES = 512 << 20

# How often a running command's limits are checked, and (when a person can interrupt it, `cancel`) how
# often the interruption is looked for.
LIMIT_CHECK_S = 0.5
CANCEL_CHECK_S = 0.05

_RESET_NOTE = "variables, functions and aliases set earlier are gone"


class PersistentShell:
    """A Runtime backed by one persistent `bash --noprofile --norc` process.

    root: the workspace; the shell starts there. spawn_prefix: argv put before the bash argv (a sandbox
    wraps the shell with e.g. `bwrap ... --`; `root` and `scratch_dir` must appear at the same paths
    inside). env: the shell's environment (default: a copy of os.environ), with NONINTERACTIVE_ENV
    applied. scratch_dir: where command and output files go (default: a private temp dir, removed on
    close; a given one is kept, only our files in it are removed). preexec_fn: passed to Popen.
    while_starting: called once, in this thread, after the shell is spawned and before its first answer
    is awaited: the caller's own work overlaps the shell's start (an exception it raises ends the shell
    and propagates). release_later: close() kills every process at once and leaves the scratch files'
    removal to runtime/later.py's background thread (which the process waits for before it exits).
    `cancel`: once set (by another thread: a person pressed Ctrl-C), the running command is stopped as
    a timed-out one is, its processes killed.
    """

    cancel: threading.Event | None = None
    # Shell code run before anything else in each new shell (a sandbox's resource limits).
    _setup_first = ""
    # Whether the spawned process becomes a child subreaper (see subreaper.py); a sandbox
    # whose PID namespace reaps its own orphans need not, and then spawns without Python in the child.
    _subreaper = True
    _launcher = True  # whether a subreaper may be made by subreaper.launcher() (False once it failed here)

    def __init__(
        self,
        root: Path,
        *,
        spawn_prefix: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        scratch_dir: Path | None = None,
        preexec_fn: Callable[[], Any] | None = None,
        read_cap: int = DEFAULT_READ_CAP,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        start_timeout: float = 30.0,
        while_starting: Callable[[], object] | None = None,
        release_later: bool = False,
    ) -> None:
        self.root = Path(root).absolute()
        if not self.root.is_dir():
            raise RuntimeFailure(f"workspace root {self.root} is not a directory")
        self.argv = [*(spawn_prefix or ()), *SHELL_ARGV]
        self.env = shell_env(env)
        self._preexec_fn = preexec_fn
        self._read_cap = read_cap
        self._max_output_bytes = max_output_bytes
        self._start_timeout = start_timeout
        sweep_once()  # what dead runs left in the temp dir and the cgroups
        scratch, own = make_scratch(scratch_dir)
        self.scratch_dir, self.cmd_dir, self.out_dir = scratch, scratch / "cmd", scratch / "out"
        self._res = ShellResources(scratch, own, later=release_later)
        self._finalizer = weakref.finalize(self, self._res.release)
        self._lock = threading.Lock()
        self._closed = False
        self._count = 0
        self._cwd = str(self.root)
        self._while_starting = while_starting  # the first start's only: a restart has no caller waiting
        self._start()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def cwd(self) -> str:
        """The shell's working directory as of the last command that finished."""
        return self._cwd

    @property
    def pid(self) -> int:
        """Pid of the process spawned for the shell (the sandbox wrapper when there is a prefix)."""
        return self._session.pid

    @property
    def _session(self) -> ShellSession:
        if self._res.session is None:
            raise RuntimeFailure("the shell runtime is closed")
        return self._res.session

    def _start(self) -> None:
        while_starting, self._while_starting = self._while_starting, None
        try:
            session = ShellSession(
                self.argv,
                cwd=self.root,
                env=self.env,
                preexec_fn=self._preexec_fn,
                subreaper=self._subreaper,
                launcher=self._launcher,
                **self._spawn_kwargs(),
            )
        except OSError as exc:
            raise RuntimeFailure(f"could not start the shell `{shlex.join(self.argv)}`: {exc}") from exc
        self._res.session = session
        ahead = self.out_dir / f"out-{self._count + 1}.log"  # the first command's, made by the setup line
        self._res.files.append(ahead)
        nonce = _nonce()
        sent = session.send(setup_line(self._setup_first, self._cwd, self.root, nonce, ahead))
        if while_starting is not None:
            try:
                while_starting()
            except BaseException:
                self._res.session = None
                session.kill_all()
                raise
        outcome = session.wait_record(nonce, time.monotonic() + self._start_timeout) if sent else Wake.EOF
        if not isinstance(outcome, tuple):
            said = session.drain_text() or "no output"
            self._res.session = None
            session.kill_all()
            if outcome is Wake.EOF and session.via_launcher:  # e.g. prctl refused: try without it
                self._launcher = False
                self._start()
                reaping.launcher_failed()  # the shell came up without it: the launcher was at fault
                return
            why = "exited" if outcome is Wake.EOF else f"did not answer within {self._start_timeout:g} s"
            raise RuntimeFailure(f"the shell `{shlex.join(self.argv)}` {why}: {said[-500:]}")
        session.adopt_current_tree(self._process_table())
        self._cwd = outcome[1] or self._cwd

    def _process_table(self) -> dict[int, procs.ProcInfo] | None:
        """The processes among which the shell's own are (None: all of /proc); a sandbox with a cgroup
        knows them all."""
        return None

    def _spawn_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the shell's Popen (a sandbox passes its bind fds)."""
        return {}

    def exec(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
        rw_binds: Sequence[Path] = (),
        root_writable: bool = True,
        cwd: Path | None = None,
    ) -> ExecResult:
        """Run `argv` once beside the shell, where the shell's commands run (here: unconfined on this
        machine; a sandbox runs it in a fresh sandbox like the shell's). `rw_binds` and `root_writable`
        only mean something to a sandbox."""
        del rw_binds, root_writable
        return run_once(
            argv,
            input=input,
            timeout=timeout,
            env=dict(self.env if env is None else env),
            cwd=cwd or self.root,
        )

    def _restart(self) -> None:
        if self._closed:
            raise RuntimeFailure("the shell runtime was closed while a command ran")
        old = self._res.session
        self._res.session = None
        if old is not None:
            old.kill_all()
        self._start()

    def close(self) -> None:
        """Kill the shell and every process it started; remove the scratch files. Idempotent."""
        self._closed = True
        self._res.closing = True
        self._finalizer()

    def __enter__(self) -> PersistentShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ------------------------------------------------------------------------------

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command` in the shell and wait at most `timeout` seconds (None: no limit).

        On timeout every process the shell started is killed (the shell itself survives) and the
        partial output comes back with timed_out=True and exit_code None. If the shell exits or is
        itself stuck, a new one is started in the last known cwd and `note` says so.
        """
        with self._lock:
            session = self._session
            self._count += 1
            # One command file, rewritten in place for each command (no directory change: on a slow disk
            # a file created and removed per step is most of a step's cost); bash reads a sourced file
            # whole before running any of it.
            script = self.cmd_dir / "cmd.sh"
            log = self.out_dir / f"out-{self._count}.log"
            if self._count == 1:
                self._res.files.append(script)
            ahead = self.out_dir / f"out-{self._count + 1}.log"  # the next command's, made after this one
            self._res.files.append(ahead)
            self._write_script(script, command)
            nonce = _nonce()
            line = command_line(script, log, nonce, ahead)
            started = time.monotonic()
            deadline = None if timeout is None else started + max(timeout, 0.0)
            stop_reason: list[str] = []
            checked = [started]

            def tick() -> bool:
                if self.cancel is not None:  # looked at often; the limits still every LIMIT_CHECK_S
                    if self.cancel.is_set():
                        stop_reason.append("interrupted by the user")
                        return True
                    if time.monotonic() - checked[0] < LIMIT_CHECK_S:
                        return False
                    checked[0] = time.monotonic()
                reason = self._over_limit(log)
                if reason:
                    stop_reason.append(reason)
                return bool(reason)

            self._command_started()
            tick_s = LIMIT_CHECK_S if self.cancel is None else CANCEL_CHECK_S
            outcome = (
                session.wait_record(nonce, deadline, tick=tick, tick_s=tick_s)
                if session.send(line)
                else Wake.EOF
            )
            exit_code, note = self._settle(session, nonce, outcome, script, log, "".join(stop_reason[:1]))
            duration = time.monotonic() - started
            output, size = read_capped(log, self._read_cap)
            # bash names the sourced file in its messages; show the usual "bash: ..." instead.
            output = output.replace(f"{script}: ", "bash: ")
            note = "; ".join(part for part in (note, *self._command_notes(output)) if part)
            return CommandResult(
                output=output,
                exit_code=exit_code,
                timed_out=outcome is Wake.TIMEOUT,
                duration_s=duration,
                output_path=str(log),
                output_bytes=size,
                note=note,
            )

    def _write_script(self, script: Path, command: str) -> None:
        data = command.encode("utf-8", errors="replace") + b"\n"
        try:
            try:
                rewrite_file(script, data)
            except FileNotFoundError:  # an unsandboxed command removed the scratch dir (`rm -rf /tmp/*`)
                self.cmd_dir.mkdir(parents=True, exist_ok=True)
                self.out_dir.mkdir(parents=True, exist_ok=True)
                rewrite_file(script, data)
        except OSError as exc:
            raise RuntimeFailure(f"cannot write the command file {script}: {exc}") from exc

    def _kill_commands(self, session: ShellSession) -> int:
        """Kill every process the running command started, sparing the shell (a container runtime,
        whose processes are not our descendants, overrides this); how many were killed."""
        return len(session.kill_commands())

    def _may_have_leftovers(self, session: ShellSession) -> bool:
        """A cheap test that a finished command may have left processes behind, before the process
        table is read: the shell (a child subreaper) has children only if something still runs."""
        try:
            return bool(Path(f"/proc/{session.pid}/task/{session.pid}/children").read_bytes().strip())
        except OSError:
            return True

    def _end_leftovers(self, session: ShellSession, script: Path, log: Path) -> str:
        """End what a finished command left running (background jobs, daemons, a fork bomb's tail), so
        no process outlives its command or reaches into the next one; the note says so."""
        if not self._may_have_leftovers(session):
            return ""
        killed = self._kill_commands(session)
        if not killed:
            return ""
        session.flush_job_notices(script, log, within=KILL_GRACE_S / 3)
        return (
            f"the command left {killed} process{'es' if killed != 1 else ''} running in the background; "
            f"{'they were' if killed != 1 else 'it was'} stopped when it ended (a process lives only as long "
            "as the command that started it: start a server and its client in the same command)"
        )

    def _command_started(self) -> None:
        """Called just before each command is sent (a sandbox notes its counters)."""

    def _command_notes(self, output: str) -> list[str]:
        """What else the model should be told about the command that just ended (a sandbox reports the
        limits it reached); appended to the note."""
        del output
        return []

    def _over_limit(self, log: Path) -> str | None:
        """Why the running command must be stopped now, or None. Called about every 0.5 s of a running
        command; a sandbox extends it with its own checks (e.g. a process count)."""
        if _size(log) > self._max_output_bytes:
            return f"output passed {self._max_output_bytes:,} bytes"
        return None

    def _settle(
        self,
        session: ShellSession,
        nonce: str,
        outcome: Record | Wake,
        script: Path,
        log: Path,
        stop_reason: str = "",
    ) -> tuple[int | None, str]:
        """Exit code and note for a command's outcome, recovering the shell where needed."""
        if self._closed:
            raise RuntimeFailure("the shell runtime was closed while a command ran")
        if isinstance(outcome, tuple):
            self._cwd = outcome[1] or self._cwd
            return outcome[0], self._end_leftovers(session, script, log)
        if outcome is Wake.EOF:
            try:
                status = _status(session.popen.wait(timeout=KILL_GRACE_S))
            except subprocess.TimeoutExpired:  # it closed its stdout but lives on: treat as gone
                status = None
            self._restart()
            return status, (
                f"the shell exited (status {status}), ending the processes it started; "
                f"a new shell was started in {self._cwd}: {_RESET_NOTE}"
            )
        why = f"{stop_reason}, so the command was stopped; " if outcome is Wake.TICK and stop_reason else ""
        after = session.stop_command(nonce, lambda: self._kill_commands(session), within=KILL_GRACE_S)
        if isinstance(after, tuple):
            self._cwd = after[1] or self._cwd
            session.flush_job_notices(script, log, within=KILL_GRACE_S / 3)
            return None, (
                f"{why}every process started from the shell was killed, background jobs included; "
                "the shell kept its working directory and variables"
            )
        self._restart()
        return None, (
            f"{why}the shell itself did not come back (a loop of shell builtins?), so it was replaced "
            f"by a new shell in {self._cwd}: {_RESET_NOTE}"
        )


def _nonce() -> str:
    return "__devloop_" + secrets.token_hex(12)


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _status(returncode: int) -> int:
    """A Popen return code as a shell would report it (killed by signal N -> 128 + N)."""
    return returncode if returncode >= 0 else 128 - returncode
