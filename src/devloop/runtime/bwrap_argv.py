"""bubblewrap itself: whether it works here, which options it has, and the argv of one sandbox.

Kept apart from the runtime (bwrap.py) so the sandbox's shape -- what is bound, hidden, read-only, and how a
root launcher drops to the sandbox user -- reads in one place and is testable without starting a shell.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from devloop.runtime.identity import SandboxUser
from devloop.runtime.limits import Limits
from devloop.runtime.sandbox_env import is_under, outermost

INSTALL_HINT = "install the Debian/Ubuntu package `bubblewrap` (apt-get install bubblewrap)"
# Host paths replaced by empty private ones inside the sandbox (besides HOME).
PRIVATE_DIRS: tuple[Path, ...] = (Path("/tmp"), Path("/var/tmp"), Path("/run"))
# The only parts of the host's root shown as they are (read-only): the system's programs, libraries and
# configuration, and /sys. A read-only mount does not stop connect(2) on a unix socket file, so a directory
# that holds services' state (/var, /srv, /opt, /mnt, /media, /home, other top-level dirs) is absent unless
# a caller binds a path in it (the workspace, a venv, a PATH entry). Top-level links (bin -> usr/bin) are
# made as links.
SYSTEM_PATHS: tuple[Path, ...] = tuple(
    Path(p)
    for p in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/nix/store", "/sys")
)
# The host's table of bound unix sockets (its network namespace's): those lying in a read-only path the
# sandbox shows are covered by /dev/null inside, so connect(2) on them is refused.
HOST_UNIX_SOCKETS = Path("/proc/net/unix")
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
    limits_wrapper: bool = True,
) -> list[str]:
    """The argv that starts a sandbox around the argv that follows it (the limits wrapper, then the shell;
    `limits_wrapper=False` leaves the wrapper out for a shell that sets the limits itself).

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
    shown = system_view()
    for path in shown:
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        else:
            argv += ["--ro-bind", str(path), str(path)]
    system_links = [p for p in shown if p.is_symlink()]
    shown = [p for p in shown if not p.is_symlink()]
    links = [
        link
        for link in (Path("/var/run"), Path("/var/lock"))  # usually links into /run, which is private
        if link.is_symlink() and is_under(Path("/var", os.readlink(link)).resolve(), Path("/run"))
    ]
    if links:  # bwrap would make /var 0700 and root's, and /var/tmp lies in it
        argv += [*(["--perms", "0755"] if demote else []), "--dir", "/var"]
    for link in links:
        argv += ["--symlink", os.readlink(link), str(link)]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    if not (demote and nested_userns):  # else the inner bwrap, which must first write its own userns limit
        argv += ["--ro-bind", "/proc/sys", "/proc/sys"]
    tmpfs = [
        *(["--size", str(tmpfs_bytes)] if tmpfs_bytes and "--size" in options else []),
        *(["--perms", "1777"] if demote else []),
        "--tmpfs",
    ]
    masked = [*PRIVATE_DIRS]
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
    # Shown again: what lies under a hidden dir or outside the system's paths, but only strict descendants
    # of hidden dirs: a PATH entry equal to HOME (or above it, or /) must not undo a mask.
    # A path through one of the system links (/bin on a merged-/usr host, from PATH) that lands in a
    # shown path is visible already: binding it again is a mount (a millisecond) for nothing.
    ro_binds = [p for p in ro_binds if not _shown_through_link(p, system_links, shown)]
    visible_again = [
        p
        for p in ro_binds
        if (any(is_under(p, m) for m in hidden) or not any(is_under(p, s) for s in shown))
        and not any(is_under(m, p) for m in hidden)
    ]
    if allow_network:  # DNS: resolv.conf often points into /run (systemd-resolved)
        resolv = Path("/etc/resolv.conf").resolve()
        if resolv.exists() and any(is_under(resolv, m) for m in masked):
            visible_again.append(resolv.parent)
    made: set[Path] = set()
    # Whether a mount point's parent must be made (see bind), per parent: the binds share most parents.
    needs_dir: dict[Path, bool] = {}
    covering = [*shown, *tmpfs_roots]

    def must_make(parent: Path) -> bool:
        if parent not in needs_dir:
            in_tmpfs = any(is_under(parent, t) and parent != t for t in tmpfs_roots)
            in_root = parent != Path("/") and not any(is_under(parent, s) for s in covering)
            needs_dir[parent] = in_tmpfs or in_root
        return needs_dir[parent]

    def bind(flag: str, path: Path) -> None:
        # bwrap makes missing mount points 0700 and root's, in a private tmpfs and in the sandbox's own
        # root alike: a demoted user could not walk through them.
        if demote:
            for parent in reversed(path.parents):
                if parent not in made and must_make(parent):
                    made.add(parent)
                    argv.extend(["--perms", "0755", "--dir", str(parent)])
        argv.extend([flag, str(path.resolve()), str(path)])

    read_only = [p for p in outermost(p for p in visible_again if p.exists())]
    for path in read_only:
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
    writable = [root, *([scratch / "out"] if scratch is not None else []), *(Path(p) for p in rw_binds)]
    for sock in host_sockets_in([*shown, *read_only], hidden=[*tmpfs_roots, *writable]):
        argv += ["--ro-bind", "/dev/null", str(sock)]
    argv += ["--remount-ro", "/"]  # the sandbox's own root (a tmpfs holding the mount points)
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
    # Without the wrapper the argv that follows must set the limits itself (a persistent shell's setup
    # line: Limits.shell_setup) before it runs anything else.
    return argv + ((limits or Limits()).wrapper_argv() if limits_wrapper else [])


def _shown_through_link(path: Path, links: Sequence[Path], shown: Sequence[Path]) -> bool:
    """Whether `path` lies under one of the system `links` (laid down as the same links inside) and
    resolves into one of the `shown` paths, so that it already shows the same files inside."""
    if not any(is_under(path, link) for link in links):
        return False
    real = path.resolve()
    return any(is_under(real, s) for s in shown)


def system_view(candidates: Iterable[Path] = SYSTEM_PATHS) -> list[Path]:
    """The SYSTEM_PATHS this host has (a top-level link counts: it is made as a link)."""
    return [p for p in candidates if p.is_symlink() or p.is_dir()]


def host_sockets_in(
    shown: Iterable[Path], *, hidden: Iterable[Path] = (), table: Path = HOST_UNIX_SOCKETS
) -> list[Path]:
    """Unix sockets bound on this host (its network namespace's table) whose files lie in a read-only
    path the sandbox shows and not in a private or writable one, each still a socket file at a path with
    no link in it. Covering these with /dev/null is all that can be done on a kernel whose Landlock has
    no right for connect(2) to a pathname socket (that came with Landlock ABI 9): sockets bound later,
    or in another network namespace, are not in the table."""
    shown, hidden = list(shown), list(hidden)
    try:
        lines = table.read_text(errors="replace").splitlines()[1:]
    except OSError:
        return []
    found: list[Path] = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) < 8 or not fields[7].startswith("/"):
            continue  # unnamed or abstract (those live in the network namespace, which is the sandbox's own)
        path = Path(fields[7])
        if (
            path in found
            or not any(is_under(path, s) for s in shown)
            or any(is_under(path, h) for h in hidden)
        ):
            continue
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode) and os.path.realpath(path.parent) == str(path.parent):
                found.append(path)
        except OSError:
            continue
    return found


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
