"""One running bash process, the pipe it reports on, and the processes it owns."""

from __future__ import annotations

import contextlib
import os
import selectors
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from devloop.runtime import procs
from devloop.runtime import subreaper as reaping
from devloop.safefs.tree import remove_tree

# How long a killed shell gets to be reaped before we stop waiting for it.
_REAP_S = 5.0
# While a stopped command's shell has not come back, how often it is interrupted again.
_REKILL_S = 0.05
# How long the shell's own processes get to show as stopped before /proc is searched instead.
_STOP_WAIT_S = 0.05
# Bytes of unexpected chatter on the control pipe kept for error messages.
_CHATTER_KEEP = 4096


class Wake(Enum):
    """Why waiting for a sentinel ended without one."""

    EOF = "eof"  # the shell exited
    TIMEOUT = "timeout"  # the deadline passed
    TICK = "tick"  # the caller's periodic check asked to stop


# Sent to the shell to end the command it runs: its trap returns from the sourced command file (a
# loop made of builtins included), and the shell, its cwd and variables live on.
INTERRUPT_SIGNAL = signal.SIGUSR2
INTERRUPT_TRAP = "trap 'builtin return 130 2>/dev/null' USR2"

Record = tuple[int, str]  # (exit status, $PWD) as printed by the sentinel


def rewrite_file(path: Path, data: bytes) -> None:
    """`data` as the whole of the command file `path`: written over the file in place when it is one
    (no directory change, and no truncation to zero, after which ext4 flushes the file at close), else
    as a new file (what stood there, a link or anything else, is removed, never followed)."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)  # a FIFO put there must not block the host
    except FileNotFoundError:
        fd = -1
    except OSError:  # a link (ELOOP), a directory, a FIFO nobody reads: an unconfined command put it there
        fd = -1
        _discard(path)
    if fd >= 0 and not _plain_file(fd):
        os.close(fd)
        fd = -1
        _discard(path)
    if fd < 0:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _plain_file(fd: int) -> bool:
    st = os.fstat(fd)
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def made_ahead(path: Path) -> str:
    """Shell code, run once the shell has reported a command, that creates the next command's output
    file `path`: on many disks creating a file is most of what a quick command costs (a journal
    transaction: 0.5-0.7 ms against a ~2 ms `cat`, measured on ext4), and this way it happens while the host
    is busy with the reply instead of inside the next command. `>|`: a command may have set noclobber."""
    return f"{{ >|{shlex.quote(str(path))}; }} 2>/dev/null || builtin true"


def setup_line(first: str, cwd: str, root: Path, nonce: str, ahead: Path) -> str:
    """A new shell's first line: `first` (e.g. its resource limits), aliases on (off in non-interactive
    bash; the agent may define and use them), the interrupt trap, into `cwd` (else `root`), the
    sentinel, then the first command's output file `ahead` made (made_ahead)."""
    return (
        f"{first}shopt -s expand_aliases; {INTERRUPT_TRAP}; builtin cd -- {shlex.quote(cwd)} 2>/dev/null"
        f" || builtin cd -- {shlex.quote(str(root))}; {sentinel(nonce)}; {made_ahead(ahead)}\n"
    )


def command_line(script: Path, log: Path, nonce: str, ahead: Path) -> str:
    """The line that runs the command file `script` (sourced, stdin /dev/null, output to `log`), prints
    the sentinel, then makes the next command's output file `ahead`. The trap is set again first: a
    command may have changed it."""
    return (
        f"{INTERRUPT_TRAP}; {{ builtin source {shlex.quote(str(script))}; }} </dev/null"
        f" >|{shlex.quote(str(log))} 2>&1; {sentinel(nonce)}; {made_ahead(ahead)}\n"
    )


def sentinel(nonce: str) -> str:
    """Shell code printing the sentinel record: nonce, last exit status and cwd, NUL-terminated.

    NUL cannot occur in a path, so any cwd parses back unambiguously."""
    return f'builtin printf \'%s %s %s\\0\' {nonce} "$?" "$PWD"'


class ShellSession:
    """A bash process reading commands on its stdin and printing sentinel records on its stdout.

    The command's own output never travels on these pipes (it goes to a file), so the control pipe
    carries only sentinels and is never blocked by a chatty command or a background job holding it.
    `subreaper` False: the spawned process is not made a child subreaper (see subreaper.py), for a
    launcher whose own PID namespace reaps; with no `preexec_fn` either, Python then vforks it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        preexec_fn: Callable[[], Any] | None = None,
        pass_fds: tuple[int, ...] = (),
        subreaper: bool = True,
        launcher: bool = True,
    ) -> None:
        self.argv = list(argv)
        # No preexec_fn at all lets Python vfork, in a fraction of a fork's time: a subreaper is then
        # made by the launcher (see subreaper.py), a sandbox's launcher sets its own flags.
        prefix = reaping.launcher() if subreaper and launcher and preexec_fn is None else None
        self.via_launcher = False  # whether it was, so that a failed start is tried again without it
        if prefix is not None:
            with contextlib.suppress(OSError):  # the launcher itself gone: without it, as below
                self.popen = _spawn([*prefix, *self.argv], cwd, env, None, pass_fds)
                self.via_launcher = True
        if not self.via_launcher:
            then = reaping.preexec(preexec_fn) if subreaper else preexec_fn
            self.popen = _spawn(self.argv, cwd, env, then, pass_fds)
            if prefix is not None:
                reaping.launcher_failed()
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self._in_fd = self.popen.stdin.fileno()
        self._out_fd = self.popen.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out_fd, selectors.EVENT_READ)
        self._buf = bytearray()
        self.chatter = b""  # what the shell printed that was not a sentinel (e.g. sandbox errors)
        self.eof = False
        # Filled by adopt_current_tree(): the shell's own processes, spared when a command is killed.
        self.spare: set[int] = {self.popen.pid}
        self.sids: set[int] = {self.popen.pid}
        self.shell_pid: int | None = None  # the bash itself, once known (a sandbox's is deep inside)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, text: str) -> bool:
        """Write shell code to the shell's stdin; False if the shell is gone."""
        data = text.encode("utf-8", errors="replace")
        try:
            while data:
                data = data[os.write(self._in_fd, data) :]
        except OSError:
            return False
        return True

    def wait_record(
        self,
        nonce: str,
        deadline: float | None,
        *,
        tick: Callable[[], bool] | None = None,
        tick_s: float = 0.5,
    ) -> Record | Wake:
        """Block (in select, not spinning) until the sentinel for `nonce` arrives, the shell exits,
        `deadline` (monotonic) passes, or `tick()`, called every `tick_s` of silence, returns True."""
        key = nonce.encode() + b" "
        while True:
            record = self._take(key)
            if record is not None:
                return record
            if self.eof:
                return Wake.EOF
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return Wake.TIMEOUT
            wait = tick_s if deadline is None else min(tick_s, deadline - now)
            try:
                ready = self._selector.select(wait)
            except (OSError, ValueError):  # closed under us by close() from another thread
                self.eof = True
                continue
            if ready:
                self._read()
            elif tick is not None and tick():
                return Wake.TICK

    def _read(self) -> None:
        try:
            chunk = os.read(self._out_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
        self._buf += chunk

    def _take(self, key: bytes) -> Record | None:
        start = self._buf.find(key)
        if start < 0:
            if len(self._buf) > 2 * _CHATTER_KEEP:  # stray output; keep only what an error may need
                self._note_chatter(bytes(self._buf[: -len(key)]))
                del self._buf[: -len(key)]
            return None
        end = self._buf.find(b"\0", start)
        if end < 0:
            return None
        if start:
            self._note_chatter(bytes(self._buf[:start]))
        status, _, cwd = bytes(self._buf[start + len(key) : end]).decode(errors="replace").partition(" ")
        del self._buf[: end + 1]
        try:
            return int(status), cwd
        except ValueError:
            return None

    def _note_chatter(self, data: bytes) -> None:
        self.chatter = (self.chatter + data)[-_CHATTER_KEEP:]

    def drain_text(self) -> str:
        """Everything unexpected the shell printed so far (for error messages)."""
        with contextlib.suppress(OSError, ValueError):
            if self._selector.select(0):
                self._read()
        self._note_chatter(bytes(self._buf))
        self._buf.clear()
        return self.chatter.decode(errors="replace").strip()

    def adopt_current_tree(self, table: dict[int, procs.ProcInfo] | None = None) -> None:
        """Record the processes that exist now (the shell and any wrapper around it, e.g. a sandbox's
        init) as the shell's own: they are spared when a command is killed. Call before any command.
        `table`: the processes to look among, when the caller knows a set holding every one of the
        shell's (a sandbox's cgroup); by default all of /proc."""
        if table is None:  # the shell is idle (it has answered), so its subtree is read exactly
            table = procs.subtree(self.pid) or procs.snapshot()
        self.spare = {self.pid} | procs.descendants(self.pid, table)
        self.sids = {table[pid].sid for pid in self.spare if pid in table} or {self.pid}
        parents = {table[pid].ppid for pid in self.spare if pid in table}
        leaves = [pid for pid in self.spare if pid not in parents and _comm(pid) == "bash"]
        self.shell_pid = leaves[0] if len(leaves) == 1 else None

    def interrupt(self, kill: Callable[[], object]) -> None:
        """Stop the running command: with the shell paused (so that a loop in it cannot start its next
        child), call `kill` to end the command's processes, then signal the shell to return from the
        command (its INTERRUPT_SIGNAL trap) and let it go on. Without a known shell, just `kill`."""
        shell = self.shell_pid
        paused = shell is not None and _signal(shell, signal.SIGSTOP)
        try:
            kill()
            if shell is not None:
                _signal(shell, INTERRUPT_SIGNAL)
        finally:
            if paused:
                _signal(shell, signal.SIGCONT)

    def kill_commands(self) -> set[int]:
        """SIGKILL everything the shell started (background jobs too), leaving the shell alive."""
        return procs.kill_family(self.pid, self.sids, spare=self.spare)

    def stop_command(self, nonce: str, kill: Callable[[], object], *, within: float) -> Record | Wake:
        """Stop the running command (interrupt, with `kill` ending its processes) until the sentinel for
        `nonce` comes or `within` seconds pass, again while it does not: a loop in the shell itself
        (`for f in ...; do head ... > $f; done`) goes on to its next child after a kill, and a loop in
        a function returns only from that function."""
        deadline = time.monotonic() + within
        while True:
            self.interrupt(kill)
            after = self.wait_record(nonce, min(deadline, time.monotonic() + _REKILL_S))
            if isinstance(after, tuple) or after is Wake.EOF or time.monotonic() >= deadline:
                return after

    def flush_job_notices(self, script: Path, log: Path, within: float) -> None:
        """Let bash print its "PID Killed  cmd" notices for jobs killed by kill_commands() into `log`.

        bash reports a dead background job while running the *next* command, which would put the
        notice into an unrelated command's output. So wait until the shell has reaped its dead
        children, then run a no-op from the same script path (so the notice names the same file)
        with output appended to the killed command's log."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and any(
            info.ppid in self.spare for info in procs.snapshot(zombies=True).values() if info.state == "Z"
        ):
            time.sleep(0.005)
        rewrite_file(script, b"builtin :\n")  # a command may have made `:` a function (the classic fork bomb)
        nonce = "__devloop_flush_" + os.urandom(8).hex()
        line = f"{{ builtin source {shlex.quote(str(script))}; }} </dev/null >>{shlex.quote(str(log))} 2>&1"
        if self.send(f"{line}; {sentinel(nonce)}\n"):
            self.wait_record(nonce, deadline + within)

    def kill_all(self, *, known_dead: bool = False) -> None:
        """SIGKILL the shell and everything it started, reap it, and close the pipes. `known_dead`: the
        caller has seen every process the shell ever started gone (its cgroup empty), so /proc is not
        searched for them."""
        if not known_dead and not self._kill_if_alone():
            procs.kill_family(self.pid, self.sids)
        with contextlib.suppress(OSError):
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=_REAP_S)
        self.close_pipes()

    def _kill_if_alone(self) -> bool:
        """SIGKILL the shell's own processes and say True when they are all there is: stopped, they
        have no other descendant. The process we spawned is a child subreaper, so while it lives every
        process its commands started (orphans and new sessions included) is below it; stopped, none of
        them can fork. False (nothing killed, maybe some stopped) when that cannot be known here: the
        caller then searches all of /proc."""
        if not (procs.subreapers() and procs.children_lists()):
            return False
        own = sorted(self.spare)
        if not all(_signal(pid, signal.SIGSTOP) for pid in own):
            return False  # one has gone: its orphans may have left the tree
        deadline = time.monotonic() + _STOP_WAIT_S
        while True:
            states = [info.state if (info := procs.read_proc(pid)) else "X" for pid in own]
            if any(state in ("Z", "X") for state in states):
                return False
            if all(state == "T" for state in states):
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0002)
        tree = procs.subtree(self.pid)
        if tree is None or set(tree) != set(own):
            return False
        for pid in own:
            _signal(pid, signal.SIGKILL)
        return True

    def close_pipes(self) -> None:
        self._selector.close()
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _spawn(
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    preexec_fn: Callable[[], Any] | None,
    pass_fds: tuple[int, ...],
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
        env=dict(env), start_new_session=True, preexec_fn=preexec_fn, bufsize=0, close_fds=True,
        pass_fds=pass_fds,
    )  # fmt: skip


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
