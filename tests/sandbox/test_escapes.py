"""The escape suite: each attempt runs through the real BwrapRuntime and its persistent shell, and the host
must be unchanged afterwards. A table (attempt, contained, by what) is printed at the end of the run."""

from __future__ import annotations

import hashlib
import os
import secrets
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from devloop.runtime import procs
from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.limits import MIB, Limits

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]


def test_write_outside_the_workspace(sandbox: BwrapRuntime, workspace: Path, escape) -> None:
    outside = workspace.parent
    tag = secrets.token_hex(4)
    etc_target = Path(f"/etc/devloop-escape-{tag}")
    with escape("write outside: absolute path (/etc)", by="read-only root filesystem"):
        result = sandbox.run(f"echo pwned > {etc_target}", 5)
        assert result.exit_code != 0 and "Read-only file system" in result.output
        assert not etc_target.exists()
    with escape("write outside: .. from the workspace", by="private /tmp (tmpfs)"):
        sandbox.run(f"echo pwned > ../dotdot-{tag}.txt; echo pwned > {outside}/abs-{tag}.txt", 5)
        assert not (outside / f"dotdot-{tag}.txt").exists()
        assert not (outside / f"abs-{tag}.txt").exists()
    with escape("write outside: symlink pointing out", by="read-only root filesystem"):
        result = sandbox.run(f"ln -s /usr/local link && echo pwned > link/escape-{tag}; echo rc=$?", 5)
        assert "rc=1" in result.output
        assert not Path(f"/usr/local/escape-{tag}").exists()
        assert (workspace / "link").is_symlink()  # the link itself is in the workspace, which is writable
    with escape("write outside: symlink into host /tmp", by="private /tmp (tmpfs)"):
        sandbox.run(f"ln -s {outside} up && echo pwned > up/sym-{tag}.txt", 5)
        assert not (outside / f"sym-{tag}.txt").exists()


def test_real_home_is_invisible(sandbox: BwrapRuntime, escape) -> None:
    home = Path.home()
    secret = f"secret-{secrets.token_hex(8)}"
    marker = home / f".devloop-escape-{secrets.token_hex(4)}"
    written = home / f".devloop-escape-written-{secrets.token_hex(4)}"
    marker.write_text(secret)
    try:
        with escape("read a file in the real HOME", by="empty tmpfs HOME"):
            result = sandbox.run(f"cat {marker}; echo rc=$?; ls -a ~", 5)
            assert secret not in result.output and "rc=1" in result.output
            assert marker.name not in result.output.split("rc=1", 1)[1]
        with escape("write a file in the real HOME", by="empty tmpfs HOME"):
            sandbox.run(f"echo pwned > {written}; echo pwned > ~/.bashrc-pwned", 5)
            assert not written.exists() and not (home / ".bashrc-pwned").exists()
    finally:
        marker.unlink(missing_ok=True)
        written.unlink(missing_ok=True)


def test_loopback_listener_is_unreachable(sandbox: BwrapRuntime, escape) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        with escape("connect to a TCP listener on 127.0.0.1", by="network namespace (--unshare-net)"):
            result = sandbox.run(
                f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)\""
                f" && echo CONNECTED; (echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED",
                10,
            )
            assert "CONNECTED" not in result.output
            ready, _, _ = select.select([listener], [], [], 0.2)
            assert not ready, "the listener saw a connection"


def test_global_git_config_is_untouched(sandbox: BwrapRuntime, escape) -> None:
    config = Path.home() / ".gitconfig"

    def digest() -> str | None:
        return hashlib.sha256(config.read_bytes()).hexdigest() if config.exists() else None

    before = digest()
    with escape("change the user's global git config", by="empty tmpfs HOME; read-only /etc"):
        result = sandbox.run(
            "git config --global user.name pwned && git config --global --get user.name;"
            " git config --system user.name pwned; echo sys=$?",
            10,
        )
        assert "sys=0" not in result.output
        assert digest() == before


def test_fork_bomb_is_contained(workspace: Path, escape, waiter) -> None:
    limits = Limits(max_processes=200)
    rt = BwrapRuntime(workspace, limits=limits)
    try:
        with escape("fork bomb", by=f"{rt.process_guard} (200 tasks); killed on close"):
            started = time.monotonic()
            # The bomb backgrounds itself, so the command returns at once and the bomb goes on.
            rt.run("bomb() { bomb | bomb & }; bomb", 3)
            time.sleep(1.0)
            assert len(sandbox_tasks(rt)) <= 200 + 5
            assert rt.run("echo alive", 10).output == "alive\n"
            assert time.monotonic() - started < 15
            shell = rt.pid
            rt.close()
            assert waiter(lambda: procs.read_proc(shell) is None, within=5)  # its PID namespace went with it
            assert rt.cgroup is None or not rt.cgroup.path.exists()
    finally:
        rt.close()


def sandbox_tasks(rt: BwrapRuntime) -> set[int]:
    """Host pids of the processes in the sandbox (its cgroup's members, else the shell's process tree)."""
    if rt.cgroup is not None:
        return rt.cgroup.pids()
    table = procs.snapshot()
    return procs.descendants(rt.pid, table) if rt.pid in table else set()


@pytest.mark.parametrize("chunk", ["head -c 2000000000 /dev/zero", "yes"])
def test_gigabytes_of_output_are_stopped(sandbox: BwrapRuntime, escape, chunk: str) -> None:
    with escape(f"2 GB of output ({chunk.split()[0]})", by="RLIMIT_FSIZE on the output log / output cap"):
        started = time.monotonic()
        result = sandbox.run(chunk, 30)
        assert time.monotonic() - started < 5
        assert result.output_bytes <= 64 * MIB
        assert len(result.output) < (1 << 20) + 500
        assert sandbox.run("echo alive", 5).output == "alive\n"


def test_ten_gigabyte_file_is_stopped(sandbox: BwrapRuntime, workspace: Path, escape) -> None:
    with escape("a 10 GB file", by="RLIMIT_FSIZE (SIGXFSZ / EFBIG)"):
        started = time.monotonic()
        result = sandbox.run(
            "head -c 10G /dev/zero > big.bin; echo head=$?; truncate -s 10G sparse.bin; echo trunc=$?;"
            " fallocate -l 10G alloc.bin 2>/dev/null; echo falloc=$?",
            30,
        )
        assert time.monotonic() - started < 5
        assert "head=153" in result.output  # 128 + SIGXFSZ
        assert "trunc=0" not in result.output and "falloc=0" not in result.output
        for name in ("big.bin", "sparse.bin", "alloc.bin"):
            path = workspace / name
            assert not path.exists() or path.stat().st_size <= 64 * MIB
    for name in ("big.bin", "sparse.bin", "alloc.bin"):
        (workspace / name).unlink(missing_ok=True)


def test_background_processes_do_not_outlive_the_run(
    workspace: Path, escape, host_processes_with, waiter
) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(10**5)}"
    rt = BwrapRuntime(workspace)
    try:
        result = rt.run(
            f"sleep {marker} & setsid sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 &"
            f" ( (sleep {marker} &) & ); disown -a; sleep 0.3; pgrep -fc 'sleep {marker}'",
            5,
        )
        assert result.output.strip().splitlines()[0] == "4"  # all four were running inside
        with escape(
            "background jobs (&, setsid, nohup, double fork)", by="a command's processes end with it"
        ):
            assert waiter(lambda: not host_processes_with(marker), within=5)
            assert "4 processes running in the background; they were stopped" in result.note
    finally:
        rt.close()


def test_kill_all_processes_stays_inside(sandbox: BwrapRuntime, escape) -> None:
    # Only ever run `kill -9 -1` where the PID namespace is proven: on the host it would kill everything.
    inner_ns = sandbox.run("readlink /proc/self/ns/pid", 5).output.strip()
    if not inner_ns or inner_ns == os.readlink("/proc/self/ns/pid"):
        pytest.fail(f"the sandbox shares the host's PID namespace ({inner_ns!r}); refusing to run kill -9 -1")
    canary = subprocess.Popen(["sleep", "60"])
    try:
        with escape("kill -9 -1", by="PID namespace"):
            sandbox.run("sleep 100 & kill -9 -1; /bin/kill -9 -1", 5)
            assert canary.poll() is None, "a host process was killed"
            assert sandbox.run("echo alive", 10).output == "alive\n"
    finally:
        canary.kill()
        canary.wait()


def test_memory_and_cpu_limits(workspace: Path, escape) -> None:
    with BwrapRuntime(workspace, limits=Limits(cpu_seconds=1, memory_bytes=512 * MIB)) as rt:
        with escape("allocate 2 GiB (memory hog)", by="RLIMIT_AS"):
            result = rt.run("python3 -c 'x = bytearray(2 << 30)'", 10)
            assert "MemoryError" in result.output
        with escape("spin the CPU", by="RLIMIT_CPU (SIGXCPU)"):
            started = time.monotonic()
            result = rt.run("python3 -c 'while True: pass'; echo rc=$?", 10)
            assert time.monotonic() - started < 5
            assert "rc=152" in result.output  # 128 + SIGXCPU


def test_credentials_in_the_environment_are_scrubbed(workspace: Path, escape) -> None:
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "sekrit", "SSH_AUTH_SOCK": "/tmp/agent.sock"}
    with (
        BwrapRuntime(workspace, env=env, extra_env={"MINE": "1"}, pass_env=["LANG"]) as rt,
        escape("read credentials from the environment", by="environment allowlist"),
    ):
        result = rt.run("env", 5)
        assert "sekrit" not in result.output and "SSH_AUTH_SOCK" not in result.output
        assert "MINE=1" in result.output
