"""The bubblewrap runtime: the persistent shell inside a `bwrap` sandbox.

Inside, only the system's paths (bwrap_argv.SYSTEM_PATHS: /usr, /etc, /lib...) are shown, read-only; the workspace (and the shell's scratch dir) are read-write at
their host paths; /tmp, /var/tmp and /run are private and empty; HOME is a fresh empty tmpfs at the host
home's path, so the user's files, ssh keys and cloud credentials are invisible; there is no network
unless allowed; processes live in their own PID, IPC, UTS and user namespaces with every capability
dropped, and die with the host process (`--die-with-parent`). Environment variables are scrubbed to an
allowlist (sandbox_env.py) and resource limits apply to every command (limits.py).

A prepared Python environment (VIRTUAL_ENV / PATH entries, and the interpreter its venv links to) that
lives under a hidden path (HOME, /tmp, /run) is bound back read-only, so the harness's venvs work.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devloop.runtime import procs
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bash_process import ShellSession
from devloop.runtime.bookkeeper import Bookkeeper
from devloop.runtime.bwrap_argv import (
    INSTALL_HINT,
    PRIVATE_DIRS,
    bwrap_argv,
    bwrap_options,
    probe_bwrap,
    probe_nested_userns,
)
from devloop.runtime.guards import CommandGuards
from devloop.runtime.identity import hand_over, launcher_argv, launcher_preexec, sandbox_user
from devloop.runtime.later import call_later
from devloop.runtime.limits import Limits
from devloop.runtime.oneshot import ExecResult, run_once
from devloop.runtime.output import DEFAULT_READ_CAP
from devloop.runtime.pidcgroup import PidsCgroup
from devloop.runtime.sandbox_env import (
    python_env_paths,
    real_homes,
    sandbox_env,
)
from devloop.runtime.shell import PersistentShell
from devloop.runtime.stale import mark_owner, sweep_once
from devloop.safefs.tree import remove_tree

# Re-exported: callers probe and build argv through the runtime's module.
__all__ = ["INSTALL_HINT", "PRIVATE_DIRS", "BwrapRuntime", "bwrap_argv", "probe_bwrap"]


class BwrapRuntime(PersistentShell):
    """A PersistentShell inside a bubblewrap sandbox; registered as runtime "bwrap".

    root: the workspace (read-write, same path inside; handed to the sandbox user when devloop runs as
    root, see identity.py). env: the environment to draw from (default os.environ); only allowlisted
    names survive, plus `pass_env` names and `extra_env` items. scratch_dir: where command and output
    files go (default: a private temp dir, removed on close). allow_network: keep the host's network.
    ro_binds: extra host paths to show read-only even if they lie under a hidden directory. hide: host
    directories replaced by empty ones inside (a run directory holding gold patches, say). rw_binds:
    host directories shown read-write at the same path, as they are (not handed over: the caller
    prepares their ownership, e.g. a venv of hard links). ro_inside: paths inside `root` shown
    read-only (an in-place repository's .git). limits: per-command resource limits (default
    Limits()), with the run's disk quota over the workspace, the scratch dir and `rw_binds`
    (guards.py). release_later: close() leaves removing the scratch dir and the cgroup to a
    background thread (runtime/later.py) once everything in the sandbox is dead. while_starting: as
    for PersistentShell (the caller's work while the sandbox boots).
    Raises RuntimeFailure when bwrap is missing or the sandbox cannot start.
    """

    def __init__(
        self,
        root: Path,
        *,
        env: Mapping[str, str] | None = None,
        scratch_dir: Path | None = None,
        allow_network: bool = False,
        extra_env: Mapping[str, str] | None = None,
        pass_env: list[str] | None = None,
        ro_binds: list[Path] | None = None,
        rw_binds: list[Path] | None = None,
        ro_inside: list[Path] | None = None,
        hide: list[Path] | None = None,
        limits: Limits | None = None,
        binary: str | None = None,
        read_cap: int = DEFAULT_READ_CAP,
        start_timeout: float = 30.0,
        release_later: bool = False,
        while_starting: Callable[[], object] | None = None,
    ) -> None:
        self._release_later = release_later
        self.limits = limits or Limits()
        self.allow_network = allow_network
        found = binary or shutil.which("bwrap")
        if not found:
            raise RuntimeFailure(f"the bwrap sandbox needs the `bwrap` binary: {INSTALL_HINT}")
        try:
            self.user = sandbox_user()
        except ValueError as exc:
            raise RuntimeFailure(str(exc)) from None
        source_env = dict(os.environ if env is None else env)
        homes = real_homes()
        home = homes[0] if homes else Path("/tmp/home")
        sweep_once()  # what dead runs left in the temp dir and the cgroups
        own_scratch = scratch_dir is None
        scratch = Path(tempfile.mkdtemp(prefix="devloop-sandbox-")) if own_scratch else Path(scratch_dir)
        scratch = scratch.absolute()
        if own_scratch:
            mark_owner(scratch)
        for sub in (scratch / "cmd", scratch / "out"):
            sub.mkdir(mode=0o755, parents=True, exist_ok=True)
        root = Path(root).absolute()
        hand_over(root, self.user)
        hand_over(scratch / "out", self.user)
        self.cgroup = self._process_cgroup()
        self.process_guard = self._guard_name()
        self._cleanup = weakref.finalize(self, _release, self.cgroup, scratch if own_scratch else None)
        if self.user.demote and not shutil.which("setpriv"):
            self._cleanup()
            raise RuntimeFailure(
                "running the sandbox as root needs `setpriv` (Debian/Ubuntu package util-linux)"
            )
        self._rw_binds = tuple(Path(p).absolute() for p in rw_binds or ())
        self.guards = CommandGuards(self.limits, [root, scratch / "out", *self._rw_binds], self.cgroup)
        self._argv_kw = dict(
            root=root,
            scratch=scratch,
            home=home,
            allow_network=allow_network,
            ro_binds=[*python_env_paths(source_env), *(Path(p).absolute() for p in ro_binds or ())],
            hidden_homes=[*homes, *(Path(p).absolute() for p in hide or ())],
            limits=self.limits,
            options=bwrap_options(found),
            tmpfs_bytes=self.limits.tmpfs_bytes,
            user=self.user,
            rw_binds=self._rw_binds,
            ro_inside=[Path(p).absolute() for p in ro_inside or ()],
            nested_userns=self.user.demote and probe_nested_userns(found, self.user.uid, self.user.gid),
        )
        self._binary = found
        # The shell sets the limits on itself first thing (one bash process fewer than the wrapper's);
        # the one-shot sandboxes of exec() keep the wrapper.
        prefix = self._prefix(limits_wrapper=False)
        self._setup_first = self.limits.shell_setup()
        self.sandbox_env = sandbox_env(source_env, home=str(home), extra_env=extra_env, pass_env=pass_env)
        # The sandbox's PID namespace reaps its orphans, so the launcher need not be a subreaper; its
        # other flags come from programs before it where setpriv can set them (no Python in the child).
        launcher = launcher_argv(self.cgroup.join_file if self.cgroup else None)
        self._subreaper = launcher is None
        try:
            super().__init__(
                root,
                spawn_prefix=[*(launcher or ()), *prefix],
                env=self.sandbox_env,
                scratch_dir=scratch,
                preexec_fn=self._preexec() if launcher is None else None,
                read_cap=read_cap,
                max_output_bytes=self.limits.max_output_bytes,
                start_timeout=start_timeout,
                while_starting=while_starting,
                release_later=release_later,
            )
        except RuntimeFailure as exc:
            self._cleanup()
            # PersistentShell names the whole (long) argv; keep what bwrap or bash said.
            said = str(exc).rpartition("` ")[2]
            raise RuntimeFailure(f"the bwrap sandbox did not start: {said}") from exc
        except BaseException:
            self._cleanup()
            raise

    def _prefix(self, **overrides: object) -> list[str]:
        return bwrap_argv(self._binary, **{**self._argv_kw, **overrides})  # type: ignore[arg-type]

    def _preexec(self) -> Callable[[], None]:
        return launcher_preexec(self.cgroup.joiner() if self.cgroup else None)

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
        """Run `argv` once in a fresh sandbox like the shell's (same mounts, user, limits, no network
        unless allowed), apart from the persistent shell and its processes. `rw_binds` are host
        directories shown read-write to this command only (e.g. devloop's own git dir); `env` is added
        to the scrubbed sandbox environment (HOME and TMPDIR kept). Killed at `timeout`."""
        full_env = {**self.sandbox_env, **(env or {}), "HOME": self.sandbox_env["HOME"], "TMPDIR": "/tmp"}
        keeper = self._bookkeeper(tuple(Path(p) for p in rw_binds), root_writable)
        if keeper is not None:
            return keeper.exec_argv(
                argv, input=input, timeout=timeout, env=env or {}, cwd=Path(cwd or self.root)
            )
        # No scratch dir and no cgroup: a one-shot owes nothing to the shell, so it also works after close.
        prefix = self._prefix(
            rw_binds=(*self._rw_binds, *(Path(p) for p in rw_binds)),
            root_writable=root_writable,
            scratch=None,
        )
        if cwd is not None:
            here, there = str(self.root), str(cwd)
            prefix = [
                there
                if word == here and i and prefix[i - 1] == "--chdir"
                else f"--chdir={there}"
                if word == f"--chdir={here}"
                else word
                for i, word in enumerate(prefix)
            ]
        # `env` adds to the scrubbed environment, never replaces it: nothing of the host's reaches in.
        return run_once(
            [*prefix, *argv], input=input, timeout=timeout, env=full_env, preexec_fn=launcher_preexec()
        )

    def _process_cgroup(self) -> PidsCgroup | None:
        # A demoted sandbox is bound by RLIMIT_NPROC inside its own user namespace, but the cgroup also
        # finds, and kills, every process it ever started; it needs root to create.
        if self.limits.max_processes is None or os.geteuid() != 0:
            return None
        return PidsCgroup.create(self.limits.max_processes)

    def _guard_name(self) -> str:
        if self.limits.max_processes is None:
            return "none"
        if self.cgroup is not None:
            return "pids cgroup"
        return "RLIMIT_NPROC"

    @property
    def disk_peak_bytes(self) -> int | None:
        """The most the files the sandbox can write grew by in this run, at any check (result.json)."""
        return self.guards.disk_peak_bytes

    def rebaseline_disk(self) -> None:
        """The host added files under the writable trees before any command ran: the disk limit counts
        growth from what is there now."""
        self.guards.rebaseline()

    def _command_started(self) -> None:
        self.guards.started()

    def _over_limit(self, log: Path) -> str | None:
        return super()._over_limit(log) or self.guards.tick()

    def _command_notes(self, output: str) -> list[str]:
        return self.guards.notes(output)

    def _process_table(self) -> dict[int, procs.ProcInfo] | None:
        # Every process of the sandbox joined its cgroup on creation: a few reads instead of all of /proc.
        if self.cgroup is None:
            return None
        return procs.table_of(self.cgroup.pids())

    def _may_have_leftovers(self, session: ShellSession) -> bool:
        if self.cgroup is None:
            return True
        return len(self.cgroup.pids()) > len(session.spare)

    def _bookkeeper(self, rw_binds: tuple[Path, ...], root_writable: bool) -> Bookkeeper | None:
        """The long-lived sandbox for exec() with these binds (made on first use), or None once closed
        or when it cannot start (exec then starts a one-shot sandbox)."""
        if self._closed:
            return None
        keepers = self.__dict__.setdefault("_keepers", {})
        key = (rw_binds, root_writable)
        if key not in keepers:
            scratch = Path(tempfile.mkdtemp(prefix="devloop-keeper-"))
            mark_owner(scratch)  # so that the next run removes it if this one is killed
            for sub in (scratch / "cmd", scratch / "out"):
                sub.mkdir(mode=0o755)
            hand_over(scratch / "out", self.user)
            prefix = self._prefix(
                rw_binds=(*self._rw_binds, *rw_binds), root_writable=root_writable, scratch=scratch
            )
            prefix.remove("--die-with-parent")  # the outer one: see below
            try:
                # No parent-death signal (bwrap's --die-with-parent is one): it fires when the *thread* that
                # made it ends, and the agent computes patches on a worker thread. The keeper's shell ends at
                # EOF on its stdin when devloop dies, and bwrap with it.
                keepers[key] = Bookkeeper(
                    self.root, spawn_prefix=prefix, env=self.sandbox_env, scratch_dir=scratch
                )
            except RuntimeFailure:
                shutil.rmtree(scratch, ignore_errors=True)
                keepers[key] = None
        return keepers[key]

    def close(self) -> None:
        """End the sandbox and everything in it; remove its cgroup and private scratch dir (in the
        background with `release_later`: every process is dead when this returns, only the directories
        wait; see runtime/later.py). Idempotent."""
        for keeper in self.__dict__.pop("_keepers", {}).values():
            if keeper is not None:
                keeper.close()
                self._remove(functools.partial(remove_tree, keeper.scratch_dir))
        if self.cgroup is not None:
            # Every process the sandbox ever started (they cannot leave the cgroup), found by one small
            # read per look instead of scans of all of /proc until the dying tree is gone.
            self._res.known_dead = self.cgroup.kill_all()
        super().close()
        if (detached := self._cleanup.detach()) is not None:
            _, release, args, _ = detached
            self._remove(functools.partial(release, *args))

    def _remove(self, job: Callable[[], object]) -> None:
        if self._release_later:
            call_later(job)
        else:
            job()


def _release(cgroup: PidsCgroup | None, scratch: Path | None) -> None:
    if cgroup is not None:
        cgroup.remove()
    if scratch is not None:
        remove_tree(scratch)
