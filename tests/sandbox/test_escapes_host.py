"""Escapes aimed at the host through the kernel and the sandbox's identity: /proc/sys and /sys writes, cgroup
files, nested namespaces, ptrace, devloop's environment and fds, signals, IPC, unix sockets, device nodes,
setuid binaries and file capabilities, root-only files.

Every attempt runs through the real BwrapRuntime. Markers are either host paths under the host's /tmp (the
sandbox's /tmp is its own empty tmpfs, so only code running on the host can create them) or workspace files
that only a successful attack could create; host state (tunables, owners, listeners) is compared before and
after. Files and links: test_escapes_host_fs.py; devloop's git: test_escapes_host_git.py."""

from __future__ import annotations

import os
import secrets
import select
import shlex
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.identity import sandbox_user, take_back
from devloop.runtime.limits import MIB, Limits

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]

DEMOTED = sandbox_user().demote  # devloop runs as root: sandboxes run as uid 65534
WHO = "uid 65534 without capabilities" if DEMOTED else "your uid without capabilities"
LIMITS = Limits(max_processes=256, max_output_bytes=8 * MIB, max_file_bytes=64 * MIB)


def tunable_attack(sandbox: BwrapRuntime, values: dict[Path, str]) -> dict[Path, str]:
    """Try to write each host file from inside; return the files whose host contents changed (restored at
    once, so a failed containment never leaves this machine changed)."""
    before = {path: path.read_text() for path in values if path.exists()}
    sandbox.run("; ".join(f"echo {value} > {path}" for path, value in values.items()), 10)
    changed = {path: path.read_text() for path in before if path.read_text() != before[path]}
    for path in changed:
        path.write_text(before[path])
    return changed


def test_core_pattern_helper_never_runs_on_the_host(
    sandbox: BwrapRuntime, workspace: Path, tmp_path: Path, escape
) -> None:
    marker = tmp_path / f"pwned-core-{secrets.token_hex(4)}"
    evil = workspace / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil.chmod(0o755)
    core = Path("/proc/sys/kernel/core_pattern")
    with escape(
        "core_pattern = |helper, then crash (host root via /proc/sys)", by=f"read-only /proc/sys; {WHO}"
    ):
        changed = tunable_attack(sandbox, {core: f"'|{evil}'"})
        sandbox.run("ulimit -c unlimited; sh -c 'kill -SEGV $$'; python3 -c 'import os; os.abort()'", 10)
        time.sleep(0.3)  # a usermode helper runs asynchronously
        assert not changed and not marker.exists()


def test_kernel_tunables_stay_read_only(sandbox: BwrapRuntime, escape) -> None:
    sysctl = Path("/proc/sys")
    with escape(
        "turn off link protection (fs.protected_hardlinks/symlinks)", by=f"read-only /proc/sys; {WHO}"
    ):
        assert not tunable_attack(
            sandbox, {sysctl / "fs/protected_hardlinks": "0", sysctl / "fs/protected_symlinks": "0"}
        )
    with escape("other tunables (hostname, modprobe, core_uses_pid)", by="read-only /proc/sys"):
        assert not tunable_attack(
            sandbox,
            {
                sysctl / "kernel/hostname": "pwned",
                sysctl / "kernel/modprobe": "/tmp/evil",
                sysctl / "kernel/core_uses_pid": "0",
            },
        )
    sysrq = Path("/proc/sysrq-trigger")
    with escape(
        "/proc/sysrq-trigger", by=f"read-only /proc entry; {WHO}" if sysrq.exists() else "absent here"
    ):
        # 'h' only prints the help to the kernel log: harmless even if this were not contained.
        result = sandbox.run(f"echo h > {sysrq}; echo rc=$?", 5)
        assert "rc=0" not in result.output


def test_sys_and_cgroup_files_stay_read_only(workspace: Path, tmp_path: Path, escape) -> None:
    marker = tmp_path / f"pwned-agent-{secrets.token_hex(4)}"
    (workspace / "agent.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (workspace / "agent.sh").chmod(0o755)
    with BwrapRuntime(workspace, limits=LIMITS) as rt:
        with escape("/sys/kernel/uevent_helper (helper run as host root)", by="read-only /sys"):
            assert not tunable_attack(rt, {Path("/sys/kernel/uevent_helper"): str(workspace / "agent.sh")})
        if rt.cgroup is None:
            pytest.skip("no pids cgroup here (not root, or no delegated hierarchy)")
        cg = rt.cgroup.path
        root = next(
            p
            for p in cg.parents
            if (p / "cgroup.procs").exists() and not (p.parent / "cgroup.procs").exists()
        )
        with escape("cgroup release_agent / notify_on_release", by="read-only /sys/fs/cgroup"):
            assert not tunable_attack(
                rt, {root / "release_agent": str(workspace / "agent.sh"), cg / "notify_on_release": "1"}
            )
            time.sleep(0.2)
            assert not marker.exists()
        with escape("raise pids.max / leave the pids cgroup", by="read-only /sys/fs/cgroup; killed with it"):
            before = rt.cgroup.pids()
            assert not tunable_attack(rt, {cg / "pids.max": "max"})
            rt.run(f"echo $$ > {root}/cgroup.procs; echo $$ > {cg.parent}/cgroup.procs", 5)
            assert before <= rt.cgroup.pids()  # every process of the shell is still counted (and killed)


def test_no_nested_namespace_or_mount(sandbox: BwrapRuntime, workspace: Path, escape) -> None:
    tag = secrets.token_hex(4)
    (workspace / "mnt").mkdir()
    with escape("nested user namespace (unshare -Ur, unshare(2))", by="--disable-userns; no capabilities"):
        raw = "import ctypes\nif ctypes.CDLL(None).unshare(0x10000000) == 0:\n    open('m-pyuserns', 'w')\n"
        sandbox.run(
            f"unshare -Ur touch m-userns; unshare -U touch m-userns2; python3 -c {shlex.quote(raw)}", 10
        )
        assert not {"m-userns", "m-userns2", "m-pyuserns"} & {p.name for p in workspace.iterdir()}
    etc = Path(f"/etc/devloop-escape-{tag}")
    with escape(
        "mount: remount / read-write, tmpfs, unshare -m", by="no CAP_SYS_ADMIN; locked read-only mounts"
    ):
        sandbox.run(
            f"mount -o remount,rw / && touch {etc}; mount -t tmpfs none mnt && touch m-mount;"
            " unshare -m sh -c 'mount -t tmpfs none mnt && touch m-mountns'; chroot / touch m-chroot",
            10,
        )
        assert not etc.exists()
        assert not {"m-mount", "m-mountns", "m-chroot"} & {p.name for p in workspace.iterdir()}
    with escape(
        "enter the supervisors' namespaces (nsenter / setns)", by="no CAP_SYS_ADMIN in their namespaces"
    ):
        sandbox.run(
            "for p in 1 2; do nsenter -t $p -a touch m-nsenter-$p;"
            " nsenter -t $p -m -U --preserve-credentials touch m-nsenter-$p; done",
            10,
        )
        assert not [p for p in workspace.iterdir() if p.name.startswith("m-nsenter")]


def test_ptrace_of_the_supervisors_fails(sandbox: BwrapRuntime, workspace: Path, escape) -> None:
    # pid 1 and 2 are the bwrap processes outside the inner user namespace: attaching to one would be a way
    # out of it. Only the sandbox's own shell may be traced.
    probe = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nfor pid in (1, 2):\n"
        "    if libc.ptrace(16, pid, 0, 0) == 0:\n        open('m-ptrace-%d' % pid, 'w')\n"
    )
    with escape("ptrace the sandbox's supervisors (bwrap pid 1, 2)", by="other user namespace; not dumpable"):
        sandbox.run(f"python3 -c {shlex.quote(probe)}", 10)
        assert not [p for p in workspace.iterdir() if p.name.startswith("m-ptrace")]


def test_devloops_environment_and_fds_stay_out(
    workspace: Path, tmp_path: Path, escape, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    held = tmp_path / "held-open.txt"
    held.write_text(secret)
    fd = os.open(held, os.O_RDONLY)
    os.set_inheritable(fd, True)  # a leaky host: the fd would survive exec unless the runtime closes it
    try:
        with BwrapRuntime(workspace, limits=LIMITS) as rt:
            host_pid = os.getpid()
            with escape(
                "read devloop's API key via /proc (environ, cmdline, host pid)",
                by="PID namespace; env allowlist",
            ):
                result = rt.run(
                    f"cat /proc/*/environ /proc/*/cmdline /proc/{host_pid}/environ 2>/dev/null;"
                    f" env; ls /proc/{host_pid} 2>&1 | head -3",
                    10,
                )
                assert secret not in result.output
            read_fds = (
                "import glob, os, stat\nfor link in glob.glob('/proc/*/fd/*') + glob.glob('/proc/*/cwd'):\n"
                "    try:\n        print(link, os.readlink(link))\n"
                "        f = os.open(link, os.O_RDONLY | os.O_NONBLOCK)\n"
                "        if stat.S_ISREG(os.fstat(f).st_mode): print(os.read(f, 4096))\n"
                "    except OSError: pass\n"
            )
            with escape(
                "read a file through an fd inherited from devloop", by="close_fds: only 0-2 and the pipes"
            ):
                result = rt.run(f"python3 -c {shlex.quote(read_fds)}; cat /proc/self/fd/{fd}", 10)
                assert secret not in result.output and str(held) not in result.output
    finally:
        os.close(fd)


def test_host_processes_and_ipc_are_out_of_reach(sandbox: BwrapRuntime, escape) -> None:
    canary = subprocess.Popen(["sleep", "30"])
    try:
        with escape("kill a host process by its pid", by="PID namespace"):
            sandbox.run(f"kill -9 {canary.pid}; /bin/kill -9 {canary.pid}", 5)
            assert canary.poll() is None
    finally:
        canary.kill()
        canary.wait()
    if not shutil.which("ipcmk"):
        pytest.skip("ipcmk (util-linux) is not installed")
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True).stdout
    shm_id = made.split()[-1]
    try:
        with escape("remove the host's SysV shared memory (ipcs / ipcrm)", by="IPC namespace"):
            result = sandbox.run(f"ipcs -m; ipcrm -m {shm_id}; echo rc=$?", 5)
            assert "rc=0" not in result.output
            assert subprocess.run(["ipcs", "-m", "-i", shm_id], capture_output=True).returncode == 0
    finally:
        subprocess.run(["ipcrm", "-m", shm_id], capture_output=True)


CONNECT = (
    "import socket, sys\nc = socket.socket(socket.AF_UNIX)\ntry:\n    c.connect(sys.argv[1]); print('CONNECTED')\n"
    "except OSError as e: print('refused', e)\n"
)


def connected(rt: BwrapRuntime, listener: socket.socket, address: str) -> bool:
    """Whether a connection from inside to `address` reached `listener` on the host."""
    said = rt.run(f"python3 -c {shlex.quote(CONNECT)} {shlex.quote(address)}", 10).output
    ready, _, _ = select.select([listener], [], [], 0.2)
    return "CONNECTED" in said or bool(ready)


def test_host_unix_sockets(sandbox: BwrapRuntime, visible_dir: Path, escape) -> None:
    tag = secrets.token_hex(4)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(f"\0devloop-escape-{tag}")
        listener.listen(1)
        with escape("connect to an abstract unix socket of the host", by="network namespace"):
            assert not connected(sandbox, listener, f"\0devloop-escape-{tag}")
    run_sock = Path(f"/run/devloop-escape-{tag}.sock")
    if os.access("/run", os.W_OK):
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(run_sock))
            run_sock.chmod(0o777)  # as careless as a service socket can be
            listener.listen(1)
            try:
                with escape("connect to a service socket under /run (docker.sock)", by="private /run"):
                    assert not connected(sandbox, listener, str(run_sock))
            finally:
                run_sock.unlink()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(visible_dir / "service.sock"))  # the default mode, 0755 for root: owner-only
        listener.listen(1)
        with escape("connect to an owner-only unix socket of the host", by=WHO):
            if not DEMOTED:
                pytest.skip("the sandbox is your uid: your own sockets are yours")
            assert not connected(sandbox, listener, str(visible_dir / "service.sock"))


def test_world_writable_socket_outside_the_system_paths(
    sandbox: BwrapRuntime, state_dir: Path, escape
) -> None:
    path = state_dir / "open.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        path.chmod(0o777)  # a read-only mount would not stop connect(): the directory must not be there
        listener.listen(1)
        with escape(
            "connect to a world-writable unix socket (/var/lib/...)",
            by="only system paths shown (no /var, /srv, /opt...)",
        ):
            assert not connected(sandbox, listener, str(path))
            assert "No such file or directory" in sandbox.run(f"ls {state_dir}", 5).output


def test_world_writable_socket_in_a_shown_system_path(workspace: Path, visible_dir: Path, escape) -> None:
    path = visible_dir / "open.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        path.chmod(0o777)
        listener.listen(1)
        with (
            BwrapRuntime(workspace, limits=LIMITS) as rt,  # started after the socket was bound
            escape(
                "connect to a world-writable unix socket in /usr/local, /etc",
                by="covered by /dev/null inside",
            ),
        ):
            assert not connected(rt, listener, str(path))
            # The directory is there; the socket's name now is /dev/null's.
            assert rt.run(f"ls -l {path}", 5).output.startswith("crw")


def test_no_devices(sandbox: BwrapRuntime, workspace: Path, escape) -> None:
    disk = os.stat("/").st_dev
    with escape("mknod the host's disk and /dev/mem", by=f"no CAP_MKNOD; {WHO}"):
        sandbox.run(f"mknod disk b {os.major(disk)} {os.minor(disk)}; mknod mem c 1 1; mknod kmsg c 1 11", 5)
        kinds = [os.lstat(p).st_mode for p in workspace.iterdir()]
        assert not [m for m in kinds if stat.S_ISBLK(m) or stat.S_ISCHR(m)]
    with escape(
        "read the disk or kernel memory (/dev, /proc/kcore)", by="minimal private /dev; no CAP_SYS_RAWIO"
    ):
        result = sandbox.run(
            "for f in /dev/vda /dev/sda /dev/nvme0n1 /dev/mem /dev/kmem /dev/port /proc/kcore"
            " /dev/kmsg; do head -c 16 $f >/dev/null 2>&1 && echo READ $f; done; ls /dev",
            10,
        )
        assert "READ" not in result.output


def test_setuid_and_file_capabilities_give_nothing(workspace: Path, escape) -> None:
    mount = Path("/usr/bin/mount")
    with BwrapRuntime(workspace, limits=LIMITS) as rt:
        (workspace / "mnt").mkdir()
        suid = mount.exists() and bool(mount.stat().st_mode & stat.S_ISUID)
        with escape(
            "setuid-root binary (mount) becomes root", by="no_new_privs" if suid else "no setuid mount"
        ):
            rt.run("mount -t tmpfs none mnt && touch m-suid", 5)
            assert not (workspace / "m-suid").exists()
        with escape("grant a file capability (setcap cap_sys_admin+ep)", by="no CAP_SETFCAP"):
            rt.run("cp /bin/true capbin && setcap cap_sys_admin+ep capbin", 5)
            assert (workspace / "capbin").exists()
            with pytest.raises(OSError):
                os.getxattr(workspace / "capbin", "security.capability", follow_symlinks=False)
        rt.run(
            "cp /bin/sh rootsh && chmod 6755 rootsh && mkdir -p d && cp rootsh d/ && chmod 6755 d/rootsh", 5
        )
    with escape("setuid shell left in a kept workspace (take_back)", by="chown by root clears setuid/setgid"):
        if not DEMOTED:
            pytest.skip("not root: a setuid file of your own gives nobody more than you")
        assert os.lstat(workspace / "rootsh").st_mode & stat.S_ISUID  # planted: setuid to the sandbox user
        take_back(workspace)  # what --keep-workspace does: the tree becomes root's
        for path in (workspace / "rootsh", workspace / "d" / "rootsh"):
            st = os.lstat(path)
            assert st.st_uid == 0 and not st.st_mode & (stat.S_ISUID | stat.S_ISGID), oct(st.st_mode)


def test_root_only_files_stay_unreadable(sandbox: BwrapRuntime, visible_dir: Path, escape) -> None:
    secret = secrets.token_hex(12)
    private = visible_dir / "root-only.txt"
    private.write_text(secret)
    private.chmod(0o600)
    for attempt, path in (
        ("read /etc/shadow", Path("/etc/shadow")),
        ("read a root-only (0600) host file", private),
    ):
        with escape(attempt, by=WHO):
            if not DEMOTED:
                pytest.skip("the sandbox is your uid: what you can read it can")
            if not path.exists():
                pytest.skip(f"{path} does not exist here")
            result = sandbox.run(f"cat {path}; echo rc=$?", 5)
            assert "rc=1" in result.output and "Permission denied" in result.output
            assert secret not in result.output
