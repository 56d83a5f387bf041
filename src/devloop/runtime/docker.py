"""The docker runtime: the persistent shell inside a container (`docker exec -i` into a sleeping one).

The container mirrors the bwrap sandbox: read-only root filesystem, the workspace and scratch dir
mounted read-write at their host paths, private /tmp and an empty HOME (tmpfs), no network unless
allowed, every capability dropped, no-new-privileges, a pids limit, a memory limit, and the same rlimits
and environment allowlist. It runs as the host user, so files it writes in the workspace stay theirs.

The container's processes are not descendants of this process, so killing a command is done inside the
container (every process but its init and the shell), and closing removes the container.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path

from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bash_process import ShellSession
from devloop.runtime.limits import Limits
from devloop.runtime.output import DEFAULT_READ_CAP, read_capped
from devloop.runtime.sandbox_env import DEFAULT_PATH, sandbox_env, shell_env
from devloop.runtime.shell import PersistentShell

DEFAULT_IMAGE = "python:3.11-slim"
SANDBOX_HOME = "/home/sandbox"
_DOCKER_TIMEOUT_S = 60.0


@functools.lru_cache(maxsize=4)
def probe_docker(binary: str = "docker") -> str | None:
    """None when a Docker engine answers, else why not (one line). Cached."""
    found = shutil.which(binary)
    if not found:
        return "the `docker` command is not on PATH"
    try:
        done = subprocess.run(
            [found, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`docker version` failed: {exc}"
    if done.returncode != 0 or not done.stdout.strip():
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"no Docker engine is reachable: {said[-1] if said else 'no answer'}"
    return None


class DockerRuntime(PersistentShell):
    """A PersistentShell in a Docker container; registered as runtime "docker".

    Same arguments as BwrapRuntime, plus `image` (default python:3.11-slim; it needs bash) and `docker`
    (the client binary). `ro_inside`: paths inside `root` mounted read-only over the workspace's
    read-write mount (chat's .git, .devloop and devloop.toml), those that exist and are not links.
    Raises RuntimeFailure when no engine answers or the container cannot start.
    """

    def __init__(
        self,
        root: Path,
        *,
        env: Mapping[str, str] | None = None,
        scratch_dir: Path | None = None,
        image: str = DEFAULT_IMAGE,
        allow_network: bool = False,
        extra_env: Mapping[str, str] | None = None,
        pass_env: list[str] | None = None,
        ro_binds: list[Path] | None = None,
        ro_inside: list[Path] | None = None,
        limits: Limits | None = None,
        docker: str = "docker",
        read_cap: int = DEFAULT_READ_CAP,
        start_timeout: float = 60.0,
    ) -> None:
        why = probe_docker(docker)
        if why is not None:
            raise RuntimeFailure(f"the docker runtime cannot start: {why}")
        self.docker = shutil.which(docker) or docker
        self.image = image
        self.limits = limits or Limits()
        root = Path(root).absolute()
        own_scratch = scratch_dir is None
        scratch = Path(tempfile.mkdtemp(prefix="devloop-docker-")) if own_scratch else Path(scratch_dir)
        scratch = scratch.absolute()
        for sub in ("cmd", "out"):
            (scratch / sub).mkdir(parents=True, exist_ok=True)
        self._pid_file = scratch / "out" / "shell.pid"
        # The container's own env is irrelevant: each `docker exec` passes the scrubbed environment.
        senv = sandbox_env(env, home=SANDBOX_HOME, extra_env=extra_env, pass_env=pass_env)
        senv["PATH"] = DEFAULT_PATH  # the host's PATH means nothing in an image
        self.sandbox_env = shell_env(senv)
        self.container = self._start_container(root, scratch, allow_network, ro_binds or [], ro_inside or [])
        self._cleanup = weakref.finalize(
            self, _release, self.docker, self.container, scratch if own_scratch else None
        )
        env_args = [
            arg for key, value in sorted(self.sandbox_env.items()) for arg in ("-e", f"{key}={value}")
        ]
        wrapper = self.limits.wrapper_argv()
        wrapper[4] = f"echo $$ > {shlex.quote(str(self._pid_file))} && {wrapper[4]}"
        prefix = [self.docker, "exec", "-i", "-w", str(root), *env_args, self.container, *wrapper]
        try:
            super().__init__(
                root,
                spawn_prefix=prefix,
                env=dict(os.environ),
                scratch_dir=scratch,
                read_cap=read_cap,
                max_output_bytes=self.limits.max_output_bytes,
                start_timeout=start_timeout,
            )
        except BaseException:
            self._cleanup()
            raise

    def _start_container(
        self, root: Path, scratch: Path, allow_network: bool, ro_binds: list[Path], ro_inside: list[Path]
    ) -> str:
        name = f"devloop-{os.getpid()}-{os.urandom(4).hex()}"
        argv = run_argv(self.docker, self.image, name, root, scratch, allow_network=allow_network,
                        ro_binds=ro_binds, ro_inside=ro_inside, limits=self.limits)  # fmt: skip
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_DOCKER_TIMEOUT_S, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"could not start a container from {self.image}: {exc}") from exc
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeFailure(
                f"could not start a container from {self.image}: {said[-1] if said else '?'}"
            )
        return done.stdout.strip() or name

    def _in_container_kill(self, *, spare_shell: bool) -> None:
        """SIGKILL every process in the container except its init (and the shell when asked)."""
        shell_pid = ""
        if spare_shell:
            text, _ = read_capped(self._pid_file, 64)  # written in the container: never followed
            shell_pid = text.strip() if text.strip().isdigit() else ""
        script = (
            "for d in /proc/[0-9]*; do p=${d#/proc/}; "
            f'[ "$p" = 1 ] || [ "$p" = "$$" ] || [ "$p" = "{shell_pid}" ] || kill -9 "$p" 2>/dev/null; '
            "done; true"
        )
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [self.docker, "exec", self.container, "sh", "-c", script],
                capture_output=True,
                timeout=_DOCKER_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )

    def _kill_commands(self, session: ShellSession) -> int:
        self._in_container_kill(spare_shell=True)
        return 0  # not counted: the container's processes are not visible from here

    def _may_have_leftovers(self, session: ShellSession) -> bool:
        return False  # a `docker exec` per command would cost more than the step; the container ends them

    def _restart(self) -> None:
        self._in_container_kill(spare_shell=False)  # the old shell lives in the container, not under us
        super()._restart()

    def close(self) -> None:
        """Kill the shell, remove the container and the private scratch dir. Idempotent."""
        super().close()
        self._cleanup()


def _mount_field(field: str) -> str:
    """One field of `--mount`'s comma-separated value, quoted as CSV when it holds a comma or a quote."""
    return f'"{field.replace(chr(34), chr(34) * 2)}"' if ("," in field or '"' in field) else field


def run_argv(
    docker: str,
    image: str,
    name: str,
    root: Path,
    scratch: Path,
    *,
    allow_network: bool = False,
    ro_binds: list[Path] | None = None,
    ro_inside: list[Path] | None = None,
    limits: Limits | None = None,
) -> list[str]:
    """The `docker run` argv of the sleeping container the shell is exec'd into."""
    limits = limits or Limits()
    argv = [
        docker,
        "run",
        "-d",
        "--rm",
        "--init",
        "--name",
        name,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--tmpfs",
        "/tmp:rw,exec,mode=1777",
        "--tmpfs",
        f"{SANDBOX_HOME}:rw,exec,mode=1777",
        "-v",
        f"{root}:{root}:rw",
        "-v",
        f"{scratch / 'out'}:{scratch / 'out'}:rw",
        "-v",
        f"{scratch / 'cmd'}:{scratch / 'cmd'}:ro",
        "-w",
        str(root),
    ]
    for path in ro_binds or ():
        argv += ["-v", f"{Path(path).absolute()}:{Path(path).absolute()}:ro"]
    # Over the workspace's own mount (docker mounts a deeper target after a shallower one). A link is
    # not mounted: docker would mount what it leads to. What does not exist cannot be mounted.
    for path in ro_inside or ():
        path = Path(path).absolute()
        if os.path.lexists(path) and not path.is_symlink():
            fields = ["type=bind", f"source={path}", f"target={path}", "readonly"]
            argv += ["--mount", ",".join(map(_mount_field, fields))]
    if not allow_network:
        argv += ["--network", "none"]
    if limits.max_processes is not None:
        argv += ["--pids-limit", str(limits.max_processes)]
    if limits.memory_bytes is not None:
        argv += ["--memory", str(limits.memory_bytes)]
    return [*argv, image, "sleep", "infinity"]


def _release(docker: str, container: str, scratch: Path | None) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [docker, "rm", "-f", container],
            capture_output=True,
            timeout=_DOCKER_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
