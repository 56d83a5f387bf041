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
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

from devloop.runtime import procs
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.limits import Limits
from devloop.runtime.output import DEFAULT_READ_CAP
from devloop.runtime.pidcgroup import PidsCgroup
from devloop.runtime.sandbox_env import (
    is_under,
    outermost,
    python_env_paths,
    real_homes,
    sandbox_env,
)
from devloop.runtime.shell import PersistentShell

INSTALL_HINT = "install the Debian/Ubuntu package `bubblewrap` (apt-get install bubblewrap)"
# Host paths replaced by empty private ones inside the sandbox (besides HOME).
PRIVATE_DIRS: tuple[Path, ...] = (Path("/tmp"), Path("/var/tmp"), Path("/run"))
_PROBE_TIMEOUT_S = 10.0
_WATCHDOG_S = 0.25


@functools.lru_cache(maxsize=8)
def bwrap_options(binary: str) -> frozenset[str]:
    """The long options this bwrap build accepts (older releases lack e.g. --disable-userns, --size)."""
    try:
        text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S).stdout
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
    argv = [found, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-user",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
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
    scratch: Path,
    home: Path,
    allow_network: bool = False,
    ro_binds: Iterable[Path] = (),
    hidden_homes: Iterable[Path] = (),
    limits: Limits | None = None,
    options: frozenset[str] = frozenset(),
) -> list[str]:
    """The argv that starts a sandbox around the argv that follows it (the limits wrapper, then the shell).

    Mount order matters: private dirs and the homes are laid down first, then the read-only binds that
    must show through them, then the read-write workspace and scratch dir (which may sit inside any).
    """
    argv = [binary, "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "devloop-sandbox", "--cap-drop", "ALL"]
    if not allow_network:
        argv.append("--unshare-net")
    if "--disable-userns" in options:  # no nested namespaces: less kernel surface for an attacker
        argv.append("--disable-userns")
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    masked = [*PRIVATE_DIRS]
    var_run = Path("/var/run")
    if var_run.is_dir() and not var_run.is_symlink():  # usually a link to /run; a real one may hold sockets
        masked.append(var_run)
    masked += [h for h in hidden_homes if h not in masked]
    for path in outermost(masked):
        if path.is_dir():
            argv += ["--tmpfs", str(path)]
    if not any(is_under(home, m) for m in masked):
        argv += ["--tmpfs", str(home)]
    elif home not in masked:
        argv += ["--dir", str(home)]
    hidden = [*masked, home]
    # Only strict descendants of hidden dirs: a PATH entry equal to HOME (or above it) must not undo the mask.
    visible_again = [
        p for p in ro_binds
        if any(is_under(p, m) for m in hidden) and not any(is_under(m, p) for m in hidden)
    ]
    if allow_network:  # DNS: resolv.conf often points into /run (systemd-resolved)
        resolv = Path("/etc/resolv.conf").resolve()
        if resolv.exists() and any(is_under(resolv, m) for m in masked):
            visible_again.append(resolv.parent)
    for path in outermost(p for p in visible_again if p.exists()):
        if not is_under(path, root) and not is_under(path, scratch):
            argv += ["--ro-bind", str(path.resolve()), str(path)]
    for path in (root, scratch):
        argv += ["--bind", str(path.resolve()), str(path)]
    argv += ["--chdir", str(root), "--"]
    return argv + (limits or Limits()).wrapper_argv()


class BwrapRuntime(PersistentShell):
    """A PersistentShell inside a bubblewrap sandbox; registered as runtime "bwrap".

    root: the workspace (read-write, same path inside). env: the environment to draw from (default
    os.environ); only allowlisted names survive, plus `pass_env` names and `extra_env` items.
    scratch_dir: where command and output files go (default: a private temp dir, removed on close).
    allow_network: keep the host's network. ro_binds: extra host paths to show read-only even if they
    lie under a hidden directory. limits: per-command resource limits (default Limits()).
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
        source_env = dict(os.environ if env is None else env)
        homes = real_homes()
        home = homes[0] if homes else Path("/tmp/home")
        own_scratch = scratch_dir is None
        scratch = Path(tempfile.mkdtemp(prefix="devloop-sandbox-")) if own_scratch else Path(scratch_dir)
        scratch = scratch.absolute()
        scratch.mkdir(parents=True, exist_ok=True)
        self.cgroup = self._process_cgroup()
        self.process_guard = self._guard_name()
        self._cleanup = weakref.finalize(self, _release, self.cgroup, scratch if own_scratch else None)
        binds = [*python_env_paths(source_env), *(Path(p).absolute() for p in ro_binds or ())]
        prefix = bwrap_argv(
            found, root=Path(root).absolute(), scratch=scratch, home=home, allow_network=allow_network,
            ro_binds=binds, hidden_homes=homes, limits=self.limits, options=bwrap_options(found),
        )
        self.sandbox_env = sandbox_env(source_env, home=str(home), extra_env=extra_env, pass_env=pass_env)
        try:
            super().__init__(
                root, spawn_prefix=prefix, env=self.sandbox_env, scratch_dir=scratch,
                preexec_fn=self.cgroup.joiner() if self.cgroup else None, read_cap=read_cap,
                max_output_bytes=self.limits.max_output_bytes, start_timeout=start_timeout,
            )
        except RuntimeFailure as exc:
            self._cleanup()
            # PersistentShell names the whole (long) argv; keep what bwrap or bash said.
            said = str(exc).rpartition("` ")[2]
            raise RuntimeFailure(f"the bwrap sandbox did not start: {said}") from exc
        except BaseException:
            self._cleanup()
            raise
        self._watchdog_stop = threading.Event()
        if self.process_guard == "watchdog":
            watcher = threading.Thread(target=self._watch, args=(self._watchdog_stop,), daemon=True,
                                       name="devloop-bwrap-watchdog")
            watcher.start()

    def _process_cgroup(self) -> PidsCgroup | None:
        # RLIMIT_NPROC never binds host root (see limits.py), so root needs a pids cgroup.
        if self.limits.max_processes is None or os.geteuid() != 0:
            return None
        return PidsCgroup.create(self.limits.max_processes)

    def _guard_name(self) -> str:
        if self.limits.max_processes is None:
            return "none"
        if self.cgroup is not None:
            return "pids cgroup"
        return "RLIMIT_NPROC" if os.geteuid() != 0 else "watchdog"

    def _too_many_processes(self) -> bool:
        session = self._res.session
        cap = self.limits.max_processes or 0
        return session is not None and len(procs.family(session.pid, session.sids)) > cap

    def _over_limit(self, log: Path) -> str | None:
        reason = super()._over_limit(log)
        if reason is None and self.process_guard == "watchdog" and self._too_many_processes():
            reason = f"it ran more than {self.limits.max_processes:,} processes"
        return reason

    def _watch(self, stop: threading.Event) -> None:
        """The process-count guard of last resort (host root, no cgroup): between commands too, since a
        fork bomb may run in the background. Kills every process but the shell when over the limit."""
        while not stop.wait(_WATCHDOG_S):
            session = self._res.session
            if session is not None and self._too_many_processes():
                session.kill_commands()

    def close(self) -> None:
        """End the sandbox and everything in it; remove its cgroup and private scratch dir. Idempotent."""
        self._watchdog_stop.set()
        super().close()
        self._cleanup()


def _release(cgroup: PidsCgroup | None, scratch: Path | None) -> None:
    if cgroup is not None:
        cgroup.remove()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
