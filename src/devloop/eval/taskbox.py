"""Where a task's commands run while it is prepared and graded: a sandbox around its tree and venv.

Grading a patch runs the patch's code (its tests, a `conftest.py`, a `setup.py`), so the install
command, the patch applications and the tests run as the agent's commands do: in a BwrapRuntime with
the agent's limits, no network, and a scrubbed environment to which only the venv's variables and the
task's `environment.env` are added. The sandbox can write the tree and the venv, and nothing else: not
the logs, the run directory, the environment cache or the mirrors (all read-only or hidden). A command's
output reaches the log devloop parses only once every process the sandbox started is dead: devloop
copies it from a file it opened before ending the sandbox, and the sandbox never sees that log.

A task with no install step uses the cached venv itself, bound read-only into the sandbox: nothing is
copied, and no process in it can write the cache (a read-only mount refuses even the files' owner).
A task that installs gets a clone. As root, the sandbox runs as another uid (runtime/identity.py): the
clone is hard links and only its directories are handed over, so the sandbox can add and replace files
(`pip install -e .` works) but a cached file stays root's, read-only to it. A sandbox running as the
files' owner (a non-root user) could write through a link, so it gets a private copy.

`sandbox="none"` (`--sandbox none`) runs everything on this machine, unconfined, as before.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from devloop.eval.envs import EnvironmentManager
from devloop.eval.source import APPLY_ENV, ApplyResult, BaseFiles, apply_patch
from devloop.runtime.bwrap import INSTALL_HINT, BwrapRuntime, probe_bwrap
from devloop.runtime.identity import hand_over, sandbox_user
from devloop.runtime.limits import Limits, sandbox_limits
from devloop.runtime.probe import resolve_sandbox
from devloop.tasks.model import EnvironmentSpec
from devloop.types import CommandResult
from devloop.workspace import GitSeed

UNCONFINED = "graded without a sandbox (--sandbox none): the patch's code ran unconfined on this machine"
# A patch application is quick; this only bounds a stuck one.
APPLY_TIMEOUT_S = 600.0


@dataclass
class ShellResult:
    """How one command ended; its output is in the log it was given."""

    exit_code: int | None
    timed_out: bool
    duration_s: float
    note: str = ""


def run_shell(command: str, *, cwd: Path, env: dict[str, str], timeout: float, log: Path) -> ShellResult:
    """Run `command` with bash on this machine in its own process group, output (both streams) appended
    to `log`. On timeout the whole group is killed. Unconfined: for `--sandbox none` only."""
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"$ {command}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code: int | None = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
        finally:
            # Also reaps background processes the command left behind.
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return ShellResult(code, timed_out, time.monotonic() - started)


def grading_sandbox(name: str | None) -> tuple[str, str | None]:
    """What grading runs in for `--sandbox name`: "bwrap" or "none", and a one-line warning (or None).

    As `resolve_sandbox` ("auto": bwrap where it works, else none with a warning), except that docker
    grades in bwrap (the venvs live on this machine). ValueError (one line) when the named sandbox
    cannot work here."""
    runtime, warning = resolve_sandbox(name)
    if runtime == "docker":
        why = probe_bwrap()
        if why is not None:
            raise ValueError(f"--sandbox docker: grading runs in bubblewrap, which does not work here: {why}; "
                             f"{INSTALL_HINT}")  # fmt: skip
        return "bwrap", None
    return runtime, warning


def grading_confinement(
    sandbox: str | None, memory_limit: str, disk_limit: str = "10G"
) -> tuple[str, Limits, str | None]:
    """The agent's `--sandbox`, `--memory-limit` and `--disk-limit` as grading uses them: the sandbox
    name (see grading_sandbox), the per-command limits, and a warning or None. ValueError (one line)
    naming the flag for a bad value."""
    limits = sandbox_limits(memory_limit, disk_limit)
    name, warning = grading_sandbox(sandbox)
    return name, limits, warning


class TaskBox:
    """One task's tree (`workdir/<tree>`) and venv (`workdir/venv`), and where their commands run.

    `sandbox`: "bwrap" (commands in a sandbox that sees only the tree and venv read-write), "none" (on
    this machine), or anything `grading_sandbox` accepts. `limits`: the sandbox's per-command limits
    (default Limits()). Commands run in one sandbox until `stop()`, which ends it and every process in
    it and writes their output into the logs; the next command starts a fresh one. A context manager
    that stops on exit.
    """

    def __init__(self, workdir: Path, *, sandbox: str = "bwrap", limits: Limits | None = None,
                 tree: str = "tree") -> None:  # fmt: skip
        self.sandbox = sandbox if sandbox in ("bwrap", "none") else grading_sandbox(sandbox)[0]
        self.limits = limits
        self.workdir = Path(workdir).absolute()
        self.tree = self.workdir / tree
        self.venv = self.workdir / "venv"
        self.venv_writable = True  # False: `venv` is the cache itself, shown read-only
        # Patches for the sandbox to read: root's, beside the tree, read-only inside.
        self._inputs = self.workdir / "inputs"
        self.env: dict[str, str] = {}
        self.base_files: BaseFiles | None = None  # kept when the tree was extracted
        self.git_seed: GitSeed | None = None  # a one-commit tree's objects and index (checkout.py)
        self._runtime: BwrapRuntime | None = None
        self._pending: list[_Output] = []

    @property
    def confined(self) -> bool:
        """Whether commands run in the sandbox (False: unconfined, on this machine)."""
        return self.sandbox == "bwrap"

    def prepare_env(self, manager: EnvironmentManager, cached: Path, spec: EnvironmentSpec) -> dict[str, str]:
        """The venv the task's commands get (confined and with no install step, the cache itself, bound
        read-only; else a clone in the box) and the variables they get (only the venv's and `spec.env`
        when confined; this process's environment plus those when not)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.confined:
            self.env = manager.env_vars(manager.clone(cached, self.venv), spec)
            return self.env
        if not spec.install:  # nothing installs into it: the cache itself, read-only in the sandbox
            self.venv, self.venv_writable = cached, False
            self.env = manager.task_env(cached, spec)
            return self.env
        user = sandbox_user()
        # A sandbox running as the cache's owner could write a cached file through a hard link.
        manager.clone(cached, self.venv, private=not user.demote)
        hand_over(self.venv, user, dirs_only=True)
        self.env = manager.task_env(self.venv, spec)
        return self.env

    def run(self, command: str, *, timeout: float, log: Path) -> ShellResult:
        """Run `command` with bash in the tree. Its output is appended to `log` (after a `$ command`
        line) by `stop()` when confined, at once when not."""
        if not self.confined:
            return run_shell(command, cwd=self.tree, env=self.env, timeout=timeout, log=log)
        line = f"builtin cd -- {shlex.quote(str(self.tree))} && bash -c {shlex.quote(command)}"
        result = self._shell().run(line, timeout)
        self._pending.append(_Output(log, command, _open_output(result)))
        return ShellResult(result.exit_code, result.timed_out, result.duration_s, result.note)

    def start(self, while_starting: Callable[[], object] | None = None) -> None:
        """Start the sandbox now rather than at the first command (a no-op when not confined).
        `while_starting` runs once the sandbox is spawned and before it is awaited (at once when not
        confined): the host's own work overlaps the sandbox's boot."""
        if self.confined:
            self._shell(while_starting)
        elif while_starting is not None:
            while_starting()

    def host_wrote_tree(self) -> None:
        """The host wrote the tree after the sandbox started and before any command ran in it: give the
        files to the sandbox user, and take the disk limit's baseline again (they are not the run's)."""
        self.hand_over_tree()
        if self._runtime is not None:
            self._runtime.rebaseline_disk()

    def hand_over_tree(self) -> None:
        """Give the sandbox user what the host wrote into the tree since the sandbox started (e.g. test
        files reset to base). A no-op when not confined or not demoting."""
        if self.confined:
            hand_over(self.tree, sandbox_user())

    def apply(self, patch: str, *, fallbacks: bool = True) -> ApplyResult:
        """`apply_patch` on the tree, its commands run where the box runs commands."""
        return apply_patch(
            self.tree, patch, fallbacks=fallbacks, runner=self._apply_runner if self.confined else None
        )

    def stop(self) -> None:
        """End the sandbox and every process started in it, then write the commands' output into their
        logs (nothing can change it any more). Idempotent; a no-op when not confined."""
        runtime, self._runtime = self._runtime, None
        pending, self._pending = self._pending, []
        try:
            if runtime is not None:
                runtime.close()
        finally:
            for output in pending:
                output.write(self._max_output_bytes())

    def __enter__(self) -> TaskBox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _max_output_bytes(self) -> int:
        return (self.limits or Limits()).max_output_bytes

    def _shell(self, while_starting: Callable[[], object] | None = None) -> BwrapRuntime:
        if self._runtime is None:
            self._inputs.mkdir(mode=0o755, exist_ok=True)
            os.chmod(self.workdir, 0o755)  # the sandbox user walks through it to the tree and venv
            # os.environ only as the source of the allowlisted names (PATH, LANG...): the runtime drops
            # everything else; VIRTUAL_ENV lets it show the venv's base interpreter.
            self._runtime = BwrapRuntime(
                self.tree, env={**os.environ, **self.env}, extra_env=self.env, limits=self.limits,
                ro_binds=[self._inputs, *([] if self.venv_writable else [self.venv])],
                rw_binds=[self.venv] if self.venv_writable and self.venv.is_dir() else [],
                release_later=True,  # its outputs are held open (_open_output): the directory can wait
                while_starting=while_starting,
            )  # fmt: skip
        return self._runtime

    def _apply_runner(self, argv: Sequence[str], patch: bytes) -> tuple[int, str]:
        """A PatchRunner in the sandbox: the patch is a root-owned file in the read-only inputs dir."""
        self._inputs.mkdir(mode=0o755, exist_ok=True)
        patch_file = self._inputs / "patch.diff"
        tmp = self._inputs / ".patch.diff.tmp"
        tmp.write_bytes(patch)
        tmp.chmod(0o644)
        os.replace(tmp, patch_file)
        env = " ".join(f"{name}={shlex.quote(value)}" for name, value in APPLY_ENV.items())
        line = (f"builtin cd -- {shlex.quote(str(self.tree))} && {env} {shlex.join(argv)}"
                f" < {shlex.quote(str(patch_file))}")  # fmt: skip
        result = self._shell().run(line, APPLY_TIMEOUT_S)
        said = result.output + (f"\n[{result.note}]" if result.note else "")
        return (result.exit_code if result.exit_code is not None else -1), said


@dataclass
class _Output:
    """A confined command's output, to be appended to its log once the sandbox is gone."""

    log: Path
    command: str
    source: int | str  # an fd on the complete output file, or text standing in for it

    def write(self, cap: int) -> None:
        with self.log.open("ab") as out:
            out.write(f"$ {self.command}\n".encode())
            if isinstance(self.source, str):
                out.write(self.source.encode("utf-8", errors="replace"))
                return
            with os.fdopen(self.source, "rb") as src:
                if _copy(src, out, cap) >= cap and src.read(1):
                    out.write(f"\n[devloop: output cut at {cap:,} bytes]\n".encode())


def _copy(src: BinaryIO, out: BinaryIO, cap: int) -> int:
    copied = 0
    while copied < cap:
        chunk = src.read(min(1 << 20, cap - copied))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    return copied


def _open_output(result: CommandResult) -> int | str:
    """An fd on `result`'s complete output file, or text in its place. The file sits where the sandbox
    writes, so no link is followed and only a regular file with one link is taken; held open, it is
    read after the sandbox ends, so no process left behind can change what devloop reads."""
    if not result.output_path:
        return result.output
    try:
        fd = os.open(result.output_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:  # ELOOP: replaced by a symbolic link
        return f"[devloop: the output file was replaced ({exc.strerror}); its contents are not kept]\n"
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        return (
            "[devloop: the output file was replaced by a link or a special file; its contents are not kept]\n"
        )
    os.set_blocking(fd, True)
    return fd
