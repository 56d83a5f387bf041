"""bubblewrap itself: whether it works here, which options it has, and the argv of one sandbox.

Kept apart from the runtime (bwrap.py) so the sandbox's shape -- what is bound, hidden, read-only, and how a
root launcher drops to the sandbox user -- reads in one place and is testable without starting a shell.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from devloop.runtime.identity import SandboxUser
from devloop.runtime.limits import Limits
from devloop.runtime.sandbox_env import is_under, outermost

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
    ro_inside: Iterable[Path] = (),
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
    # POSIX semaphores (multiprocessing locks) live in /dev/shm, which bwrap's --dev makes 0755 and root's;
    # and a cgroup-v1 host's cpu.shares (1024) reads as "1 CPU" to tools that honour it (pylint -j):
    # the official containers run on cgroup-v2 hosts, where those files do not exist.
    argv += [*tmpfs, "/dev/shm", *(["--tmpfs", "/sys/fs/cgroup"] if os.path.isdir("/sys/fs/cgroup") else [])]
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
    # Paths inside the workspace the sandbox may read but not write (a repository's own .git when the
    # agent works in place: a hook or config planted there would run in the user's next git command).
    for path in ro_inside:
        if os.path.lexists(path) and not os.path.islink(path):
            bind("--ro-bind", Path(path))
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
