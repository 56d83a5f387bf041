"""The bubblewrap runtime: the persistent shell inside a `bwrap` sandbox.

Inside, the root filesystem is read-only; the workspace (and the shell's scratch dir) are read-write at
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
import subprocess
import tempfile
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bookkeeper import Bookkeeper
from devloop.runtime.guards import CommandGuards
from devloop.runtime.identity import SandboxUser, hand_over, launcher_preexec, sandbox_user
from devloop.runtime.limits import Limits
from devloop.runtime.oneshot import ExecResult, run_once
from devloop.runtime.output import DEFAULT_READ_CAP
from devloop.runtime.pidcgroup import PidsCgroup
from devloop.runtime.sandbox_env import (
    is_under,
    outermost,
    python_env_paths,
    real_homes,
    sandbox_env,
)
from devloop.runtime.session import ShellSession
from devloop.runtime.shell import PersistentShell
from devloop.runtime.stale import mark_owner, sweep_once

INSTALL_HINT = "install the Debian/Ubuntu package `bubblewrap` (apt-get install bubblewrap)"
# Host paths replaced by empty private ones inside the sandbox (besides HOME).
PRIVATE_DIRS: tuple[Path, ...] = (Path("/tmp"), Path("/var/tmp"), Path("/run"))
_PROBE_TIMEOUT_S = 10.0


@functools.lru_cache(maxsize=8)
def bwrap_options(binary: str) -> frozenset[str]:
    """The long options this bwrap build accepts (older releases lack e.g. --disable-userns, --size)."""
    try:
        text = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(word for word in text.split() if word.startswith("--"))


@functools.lru_cache(maxsize=8)
def probe_bwrap(binary: str | None = None) -> str | None:
    """None when `bwrap` can start a sandbox with the namespaces this runtime uses, else why not
    (one line). Cached per binary: a probe costs a few milliseconds, but it is asked once per run."""
    found = binary or shutil.which("bwrap")
    if not found:
        return "the `bwrap` binary is not on PATH"
    argv = [
        found,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--die-with-parent",
        "true",
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`bwrap` could not run: {exc}"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"`bwrap` failed (exit {done.returncode}): {said[-1] if said else 'no message'}"
    return None


def bwrap_argv(
    binary: str,
    *,
    root: Path,
    scratch: Path | None,
    home: Path,
    allow_network: bool = False,
    ro_binds: Iterable[Path] = (),
    hidden_homes: Iterable[Path] = (),
    limits: Limits | None = None,
    options: frozenset[str] = frozenset(),
    rw_binds: Iterable[Path] = (),
    root_writable: bool = True,
    tmpfs_bytes: int | None = None,
    user: SandboxUser | None = None,
    nested_userns: bool = True,
) -> list[str]:
    """The argv that starts a sandbox around the argv that follows it (the limits wrapper, then the shell).

    Mount order matters: private dirs and the homes are laid down first, then the read-only binds that
    must show through them, then the workspace, the scratch dir's `out/` (read-write) and `cmd/`
    (read-only: only the host writes command files), and `rw_binds`, which may sit inside any of them.
    /proc/sys is read-only. `tmpfs_bytes` caps each private tmpfs (/tmp, HOME...), which is memory.

    With `user.demote` (devloop runs as root), bwrap mounts as root without a user namespace, keeping
    only the capabilities to change identity; `setpriv` then becomes `user` with no capability, an
    empty bounding set and no_new_privs, and a second, unprivileged bwrap gives that user its own
    user namespace (mapped to itself) in which no further namespace can be made.
    """
    demote = user is not None and user.demote
    argv = [
        binary,
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "devloop-sandbox",
        "--cap-drop",
        "ALL",
    ]
    if demote:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        argv.insert(2, "--unshare-user")
        if "--disable-userns" in options:  # no nested namespaces: less kernel surface for an attacker
            argv.append("--disable-userns")
    if not allow_network:
        argv.append("--unshare-net")
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if not (demote and nested_userns):  # else the inner bwrap, which must first write its own userns limit
        argv += ["--ro-bind", "/proc/sys", "/proc/sys"]
    tmpfs = [
        *(["--size", str(tmpfs_bytes)] if tmpfs_bytes and "--size" in options else []),
        *(["--perms", "1777"] if demote else []),
        "--tmpfs",
    ]
    masked = [*PRIVATE_DIRS]
    var_run = Path("/var/run")
    if var_run.is_dir() and not var_run.is_symlink():  # usually a link to /run; a real one may hold sockets
        masked.append(var_run)
    masked += [h for h in hidden_homes if h not in masked]
    tmpfs_roots = [path for path in outermost(masked) if path.is_dir()]
    for path in tmpfs_roots:
        argv += [*tmpfs, str(path)]
    if not any(is_under(home, m) for m in masked):
        argv += [*tmpfs, str(home)]
        tmpfs_roots.append(home)
    elif home not in masked:
        argv += ["--dir", str(home)]
    hidden = [*masked, home]
    # Only strict descendants of hidden dirs: a PATH entry equal to HOME (or above it) must not undo the mask.
    visible_again = [
        p for p in ro_binds if any(is_under(p, m) for m in hidden) and not any(is_under(m, p) for m in hidden)
    ]
    if allow_network:  # DNS: resolv.conf often points into /run (systemd-resolved)
        resolv = Path("/etc/resolv.conf").resolve()
        if resolv.exists() and any(is_under(resolv, m) for m in masked):
            visible_again.append(resolv.parent)
    made: set[Path] = set()

    def bind(flag: str, path: Path) -> None:
        # bwrap makes missing mount points 0700 and root's: a demoted user could not walk through them.
        if demote:
            for parent in reversed(path.parents):
                if parent not in made and any(is_under(parent, t) and parent != t for t in tmpfs_roots):
                    made.add(parent)
                    argv.extend(["--perms", "0755", "--dir", str(parent)])
        argv.extend([flag, str(path.resolve()), str(path)])

    for path in outermost(p for p in visible_again if p.exists()):
        if not is_under(path, root) and not (scratch is not None and is_under(path, scratch)):
            bind("--ro-bind", path)
    bind("--bind" if root_writable else "--ro-bind", root)
    if scratch is not None:
        bind("--bind", scratch / "out")
        bind("--ro-bind", scratch / "cmd")
    for path in rw_binds:
        bind("--bind", Path(path))
    if not demote:
        argv += ["--chdir", str(root), "--"]
    else:
        # Root without CAP_DAC_OVERRIDE may not enter the handed-over workspace: change directory after
        # becoming its owner.
        assert user is not None
        argv += [
            "--chdir",
            "/",
            "--",
            "setpriv",
            f"--reuid={user.uid}",
            f"--regid={user.gid}",
            "--clear-groups",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ]
        if nested_userns:
            argv += [
                binary,
                "--unshare-user",
                "--disable-userns",
                "--cap-drop",
                "ALL",
                "--die-with-parent",
                "--bind",
                "/",
                "/",
                "--dev-bind",
                "/dev",
                "/dev",
                "--ro-bind",
                "/proc/sys",
                "/proc/sys",
                "--chdir",
                str(root),
                "--",
            ]
        else:
            argv += ["env", f"--chdir={root}"]
    return argv + (limits or Limits()).wrapper_argv()


@functools.lru_cache(maxsize=4)
def probe_nested_userns(binary: str, uid: int, gid: int) -> bool:
    """Whether a demoted user may make the unprivileged user namespace of the inner bwrap here (some
    hosts forbid unprivileged user namespaces; the sandbox then runs as that user without one)."""
    argv = [
        binary,
        "--unshare-pid",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CAP_SETUID",
        "--cap-add",
        "CAP_SETGID",
        "--cap-add",
        "CAP_SETPCAP",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--",
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        binary,
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--bind",
        "/",
        "/",
        "--dev-bind",
        "/dev",
        "/dev",
        "--",
        "true",
    ]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class BwrapRuntime(PersistentShell):
    """A PersistentShell inside a bubblewrap sandbox; registered as runtime "bwrap".

    root: the workspace (read-write, same path inside; handed to the sandbox user when devloop runs as
    root, see identity.py). env: the environment to draw from (default os.environ); only allowlisted
    names survive, plus `pass_env` names and `extra_env` items. scratch_dir: where command and output
    files go (default: a private temp dir, removed on close). allow_network: keep the host's network.
    ro_binds: extra host paths to show read-only even if they lie under a hidden directory. hide: host
    directories replaced by empty ones inside (a run directory holding gold patches, say). rw_binds:
    host directories shown read-write at the same path, as they are (not handed over: the caller
    prepares their ownership, e.g. a venv of hard links). limits: per-command resource limits (default
    Limits()), with the run's disk quota over the workspace, the scratch dir and `rw_binds`
    (guards.py).
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
        hide: list[Path] | None = None,
        limits: Limits | None = None,
        binary: str | None = None,
        read_cap: int = DEFAULT_READ_CAP,
        start_timeout: float = 30.0,
    ) -> None:
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
            nested_userns=self.user.demote and probe_nested_userns(found, self.user.uid, self.user.gid),
        )
        self._binary = found
        prefix = self._prefix()
        self.sandbox_env = sandbox_env(source_env, home=str(home), extra_env=extra_env, pass_env=pass_env)
        try:
            super().__init__(
                root,
                spawn_prefix=prefix,
                env=self.sandbox_env,
                scratch_dir=scratch,
                preexec_fn=self._preexec(),
                read_cap=read_cap,
                max_output_bytes=self.limits.max_output_bytes,
                start_timeout=start_timeout,
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

    def _command_started(self) -> None:
        self.guards.started()

    def _over_limit(self, log: Path) -> str | None:
        return super()._over_limit(log) or self.guards.tick()

    def _command_notes(self, output: str) -> list[str]:
        return self.guards.notes(output)

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
        """End the sandbox and everything in it; remove its cgroup and private scratch dir. Idempotent."""
        for keeper in self.__dict__.pop("_keepers", {}).values():
            if keeper is not None:
                keeper.close()
                shutil.rmtree(keeper.scratch_dir, ignore_errors=True)
        super().close()
        self._cleanup()


def _release(cgroup: PidsCgroup | None, scratch: Path | None) -> None:
    if cgroup is not None:
        cgroup.remove()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
