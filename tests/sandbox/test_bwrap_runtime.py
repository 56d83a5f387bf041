"""BwrapRuntime beyond escapes: shell parity with the local runtime, venvs, selection, limits, guards."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devloop.runtime.probe as probe_mod
from devloop.runtime import get_runtime, procs, resolve_sandbox
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.bwrap import BwrapRuntime, bwrap_argv, probe_bwrap
from devloop.runtime.limits import Limits, parse_bytes
from devloop.runtime.sandbox_env import sandbox_env

BWRAP_PROBLEM = probe_bwrap()
needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None, reason=f"bubblewrap is not usable: {BWRAP_PROBLEM}"
)

# -- parity: tests/runtime/test_shell.py's tests that take the `shell` fixture, run against bwrap -------------
_spec = importlib.util.spec_from_file_location(
    "runtime_shell_tests", Path(__file__).parents[1] / "runtime" / "test_shell.py"
)
assert _spec is not None and _spec.loader is not None
_shell_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shell_tests)
# The timeout test reads pids printed inside the sandbox: those are PID-namespace pids, not host ones.
# test_timeout_kills_the_whole_tree_in_the_sandbox below is its sandbox version.
_SKIP = {"test_timeout_kills_the_whole_tree_and_keeps_the_session"}
_SKIP_CODE = (lambda: None).__code__
for _name, _fn in vars(_shell_tests).items():
    takes_shell = callable(_fn) and "shell" in getattr(_fn, "__code__", _SKIP_CODE).co_varnames
    if _name.startswith("test_") and takes_shell and _name not in _SKIP:
        globals()[f"{_name}__bwrap"] = needs_bwrap(_fn)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[BwrapRuntime]:
    workspace = tmp_path / "work"
    workspace.mkdir()
    rt = BwrapRuntime(workspace)
    try:
        yield rt
    finally:
        rt.close()


@needs_bwrap
def test_timeout_kills_the_whole_tree_in_the_sandbox(shell: BwrapRuntime) -> None:
    shell.run("mkdir keep && cd keep && export KEEP=yes", 5)
    started = time.monotonic()
    result = shell.run("sleep 1000 & sh -c 'exec sleep 1000'", 0.5)
    assert time.monotonic() - started < 3.0
    assert result.timed_out and result.exit_code is None and "killed" in result.note
    after = shell.run("pwd; echo $KEEP; ps -e -o comm= | grep -c '^sleep' || true", 5)
    assert after.output.splitlines() == [str(shell.root / "keep"), "yes", "0"]


@needs_bwrap
def test_the_shells_own_processes_read_from_the_cgroup_are_those_all_of_proc_gives(
    shell: BwrapRuntime,
) -> None:
    # With a pids cgroup the sandbox's processes are read from it, not from every process on the machine:
    # the same spared set, sessions and bash as a scan of all of /proc finds.
    if shell.cgroup is None:
        pytest.skip("no pids cgroup here (not root)")
    session = shell._session
    ours = (set(session.spare), set(session.sids), session.shell_pid)
    session.adopt_current_tree()  # all of /proc
    assert (set(session.spare), set(session.sids), session.shell_pid) == ours
    assert ours[2] is not None and len(ours[0]) >= 3  # bwrap, its init, ... the shell
    # A command's background leftover is still killed, the shell (spared) kept.
    result = shell.run("sleep 1000 &", 5)
    assert "left 1 process" in result.note
    assert shell.run("echo alive", 5).output.strip() == "alive"


@needs_bwrap
def test_the_shell_sets_the_limits_on_itself_before_any_command(tmp_path: Path, monkeypatch) -> None:
    # No wrapper bash: the shell's first line sets every limit, soft and hard, on the shell itself, so the
    # commands inherit them; a limit that cannot be set ends the shell and the sandbox does not start.
    limits = Limits(max_processes=300, memory_bytes=parse_bytes("3G"), max_file_bytes=parse_bytes("100M"))
    (tmp_path / "w").mkdir()
    with BwrapRuntime(tmp_path / "w", limits=limits) as rt:
        assert "devloop-limits" not in rt.argv
        shown = rt.run(
            "for o in -Sv -Hv -Su -Hu -Sf -Hf; do ulimit $o; done; cat /proc/$$/cmdline | tr '\\0' ' '", 10
        )
        *values, cmdline = shown.output.splitlines()
        assert values == [str(3 << 20)] * 2 + ["300"] * 2 + [str(100 << 10)] * 2
        assert cmdline.split() == ["bash", "--noprofile", "--norc"]
    monkeypatch.setattr(
        Limits, "shell_setup", lambda self: "{ builtin ulimit -SH -n 99999999999; } || builtin exit 97; "
    )
    (tmp_path / "x").mkdir()
    with pytest.raises(RuntimeFailure, match="did not start"):
        BwrapRuntime(tmp_path / "x", limits=limits)


# -- the Python environment a harness prepares is visible read-only --------------------------------------------


@needs_bwrap
def test_venv_under_a_hidden_dir_is_usable_and_read_only(tmp_path: Path) -> None:
    venv = tmp_path / "cache" / "venvs" / "abc"  # under /tmp, which the sandbox replaces
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    workspace = tmp_path / "work"
    workspace.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv)}
    with BwrapRuntime(workspace, env=env) as rt:
        result = rt.run("python -c 'import sys; print(sys.prefix)'; touch $VIRTUAL_ENV/x; echo rc=$?", 10)
        assert result.output.splitlines()[0] == str(venv)
        assert "Read-only file system" in result.output and "rc=1" in result.output


@needs_bwrap
def test_the_interpreters_c_headers_are_visible_read_only(tmp_path: Path) -> None:
    """A task building a C extension needs Python.h from the interpreter's prefix."""
    venv = tmp_path / "cache" / "venvs" / "hdr"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    workspace = tmp_path / "work"
    workspace.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv)}
    code = "import sysconfig; print(sysconfig.get_paths()['include'])"
    with BwrapRuntime(workspace, env=env) as rt:
        result = rt.run(
            f'inc=$(python -c "{code}"); test -f $inc/Python.h && echo found; '
            "touch $inc/x 2>/dev/null; echo rc=$?",
            10,
        )
    assert (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
    assert "found" in result.output.splitlines() and "rc=1" in result.output


@needs_bwrap
def test_registered_and_network_opt_in(tmp_path: Path) -> None:
    rt = get_runtime("bwrap", tmp_path, allow_network=True, extra_env={"A": "1"})
    try:
        assert isinstance(rt, BwrapRuntime) and rt.allow_network
        assert rt.run("echo $A; ls /sys/class/net | sort | tr '\\n' ' '", 5).output.startswith("1\n")
    finally:
        rt.close()


@needs_bwrap
def test_process_flood_without_a_cgroup_is_held_by_rlimit_nproc(tmp_path: Path, monkeypatch) -> None:
    # Root's sandboxes run as an unprivileged user, for whom the kernel enforces RLIMIT_NPROC.
    monkeypatch.setattr("devloop.runtime.bwrap.BwrapRuntime._process_cgroup", lambda self: None)
    with BwrapRuntime(tmp_path, limits=Limits(max_processes=50)) as rt:
        assert rt.process_guard == "RLIMIT_NPROC"
        started = time.monotonic()
        flood = (
            "import os, time\nmade = refused = 0\nfor _ in range(120):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        refused += 1\n        continue\n    if pid == 0:\n"
            "        time.sleep(30)\n        os._exit(0)\n    made += 1\nprint(made, refused)"
        )
        result = rt.run(f"python3 -c {shlex.quote(flood)}", 20)
        assert time.monotonic() - started < 10
        made, refused = map(int, result.output.split())
        assert made < 50 and refused > 70
        assert "stopped when it ended" in result.note
        deadline = time.monotonic() + 5
        while len(procs.descendants(rt.pid, procs.snapshot())) > 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(procs.descendants(rt.pid, procs.snapshot())) <= 6  # the sandbox's own chain and shell


def test_missing_binary_and_bad_start_are_one_line_failures(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="bubblewrap"):
        _no_bwrap(tmp_path)
    if BWRAP_PROBLEM is None:
        with pytest.raises(RuntimeFailure, match=r"^the bwrap sandbox did not start: exited: ") as info:
            BwrapRuntime(tmp_path, limits=Limits(max_processes=1))
        assert "\n" not in str(info.value)


def _no_bwrap(tmp_path: Path) -> None:
    import devloop.runtime.bwrap as mod

    original = mod.shutil.which
    mod.shutil.which = lambda name, *a, **k: None  # type: ignore[assignment]
    try:
        BwrapRuntime(tmp_path)
    finally:
        mod.shutil.which = original  # type: ignore[assignment]


def test_resolve_sandbox(monkeypatch) -> None:
    monkeypatch.setattr(probe_mod, "probe_bwrap", lambda: None)
    assert resolve_sandbox(None) == ("bwrap", None)
    assert resolve_sandbox("AUTO") == ("bwrap", None)
    assert resolve_sandbox("none") == ("none", None)
    monkeypatch.setattr(probe_mod, "probe_bwrap", lambda: "the `bwrap` binary is not on PATH")
    name, warning = resolve_sandbox("auto")
    assert name == "none" and warning is not None and "bubblewrap" in warning and "\n" not in warning
    with pytest.raises(ValueError, match="--sandbox bwrap: .*`bubblewrap`"):
        resolve_sandbox("bwrap")
    with pytest.raises(ValueError, match="unknown sandbox 'vm'"):
        resolve_sandbox("vm")
    monkeypatch.setattr(probe_mod, "probe_docker", lambda: "no Docker engine is reachable: x")
    with pytest.raises(ValueError, match="--sandbox docker: no Docker engine"):
        resolve_sandbox("docker")


def test_argv_masks_homes_and_rebinds_only_below_them(tmp_path: Path) -> None:
    home = Path("/home/alice")
    argv = bwrap_argv(
        "bwrap",
        root=home / "code" / "proj",
        scratch=Path("/tmp/s"),
        home=home,
        hidden_homes=[home],
        ro_binds=[home, home / ".pyenv" / "bin", Path("/usr/lib")],
    )
    joined = " ".join(argv)
    assert "--unshare-net" in argv and "--die-with-parent" in argv and "--cap-drop ALL" in joined
    assert "--ro-bind /home/alice /home/alice" not in joined  # a PATH entry equal to HOME must not undo it
    assert joined.index("--tmpfs /tmp") < joined.index("--bind /tmp/s/out /tmp/s/out")
    assert "--ro-bind /tmp/s/cmd /tmp/s/cmd" in joined  # only the host writes command files
    assert "--ro-bind /proc/sys /proc/sys" in joined
    assert "--bind /home/alice/code/proj /home/alice/code/proj" in joined
    assert argv[argv.index("--") + 1 :][:4] == ["bash", "--noprofile", "--norc", "-c"]
    net = bwrap_argv("bwrap", root=tmp_path, scratch=tmp_path, home=home, allow_network=True)
    assert "--unshare-net" not in net
    # Only the system's paths are shown as they are: never the whole root, /var, /srv or /opt.
    shown = {argv[i + 1] for i, word in enumerate(argv) if word == "--ro-bind"}
    assert "/" not in shown and "/usr" in shown and not shown & {"/var", "/var/lib", "/srv", "/opt", "/mnt"}
    assert argv[argv.index("--chdir") - 2 :][:2] == ["--remount-ro", "/"]  # after the last mount point


def test_the_launcher_gets_its_flags_without_python_in_the_forked_child(tmp_path: Path, monkeypatch) -> None:
    # A preexec_fn makes Python fork the whole interpreter; setpriv (and a shell joining the cgroup) in
    # front of bwrap let it vfork, with the same no_new_privs, parent-death signal and cgroup.
    import devloop.runtime.bash_process as bash_process
    from devloop.runtime.identity import launcher_argv

    if launcher_argv() is None:
        pytest.skip("this setpriv cannot set the parent-death signal: the preexec_fn is used")
    spawned: list[object] = []
    real = bash_process.subprocess.Popen

    def popen(argv: list[str], *args: object, **kw: object) -> object:
        if argv[-1:] == ["--norc"]:  # the shell's launch (probes run other commands)
            spawned.append(kw.get("preexec_fn"))
        return real(argv, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(bash_process.subprocess, "Popen", popen)
    workspace = tmp_path / "work"
    workspace.mkdir()
    rt = BwrapRuntime(workspace)
    try:
        assert spawned == [None]
        assert Path(rt.argv[0]).name == "setpriv" and rt.argv[1:5] == [
            "--pdeathsig",
            "KILL",
            "--no-new-privs",
            "--",
        ]
        status = Path(f"/proc/{rt.pid}/status").read_text()  # the launcher, now bwrap itself
        assert "NoNewPrivs:\t1" in status
        if rt.cgroup is not None:
            assert rt.pid in rt.cgroup.pids()
        assert rt.run("echo in", 10).output == "in\n"
    finally:
        rt.close()


def test_a_path_through_a_system_link_is_not_bound_again(tmp_path: Path) -> None:
    # On a merged-/usr host /bin is a link into /usr, laid down as that link inside: a PATH entry /bin
    # shows through it already. A path the system view does not show is still bound.
    from devloop.runtime.bwrap_argv import system_view

    links = [p for p in system_view() if p.is_symlink() and p.resolve().is_dir()]
    if not links:
        pytest.skip("this host has no top-level system link (not a merged-/usr layout)")
    other = tmp_path / "tools" / "bin"
    other.mkdir(parents=True)
    argv = bwrap_argv(
        "bwrap", root=tmp_path / "ws", scratch=Path("/tmp/s"), home=Path("/home/alice"),
        ro_binds=[*links, other],
    )  # fmt: skip
    bound = {argv[i + 2] for i, word in enumerate(argv) if word == "--ro-bind"}
    assert not bound & {str(link) for link in links}
    assert str(other) in bound
    joined = " ".join(argv)
    assert all(f"--symlink {os.readlink(link)} {link}" in joined for link in links)


def test_host_sockets_in_reads_the_table_and_keeps_only_shown_read_only_sockets(tmp_path: Path) -> None:
    import socket

    shown, private = tmp_path / "shown", tmp_path / "shown" / "private"
    private.mkdir(parents=True)
    (tmp_path / "link").symlink_to(shown)
    listeners = []
    for path in (shown / "a b.sock", private / "p.sock", tmp_path / "elsewhere.sock"):
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listeners.append(listener)
    (shown / "plain.txt").write_text("not a socket")
    table = tmp_path / "unix"
    rows = [
        "Num       RefCount Protocol Flags    Type St Inode Path",
        *(
            f"0000: 00000002 00000000 00010000 0001 01 1{i} {p}"
            for i, p in enumerate(
                [
                    shown / "a b.sock",
                    private / "p.sock",
                    tmp_path / "elsewhere.sock",
                    shown / "plain.txt",
                    shown / "gone.sock",
                    tmp_path / "link" / "a b.sock",
                    "@abstract",
                    shown / "a b.sock",
                ]
            )
        ),
        "0000: 00000002 00000000 00000000 0001 03 99",  # unnamed
    ]
    table.write_text("\n".join(rows) + "\n")
    from devloop.runtime.bwrap_argv import host_sockets_in

    try:
        found = host_sockets_in([shown, tmp_path / "link"], hidden=[private], table=table)
    finally:
        for listener in listeners:
            listener.close()
    assert found == [shown / "a b.sock"]  # not the private one, nor one outside, nor through a link
    assert host_sockets_in([shown], table=tmp_path / "missing") == []


def test_sandbox_env_allowlist() -> None:
    env = sandbox_env(
        {"PATH": "/bin", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "x", "KEEP": "k"},
        home="/home/u",
        extra_env={"X": "1"},
        pass_env=["KEEP"],
    )
    assert env == {
        "PATH": "/bin",
        "LC_ALL": "C",
        "KEEP": "k",
        "X": "1",
        "HOME": "/home/u",
        "TMPDIR": "/tmp",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
    }
    with pytest.raises(ValueError, match="--pass-env: '1BAD'"):
        sandbox_env({}, home="/h", pass_env=["1BAD"])


def test_limits_validation_and_sizes() -> None:
    assert Limits().memory_bytes == 4 << 30
    assert Limits(cpu_seconds=5).ulimit_commands()[:2] == ["ulimit -S -t 5", "ulimit -H -t 6"]
    with pytest.raises(ValueError, match="Limits.max_processes"):
        Limits(max_processes=0)
    assert parse_bytes("4G") == 4 << 30 and parse_bytes("512MiB") == 512 << 20 and parse_bytes("10") == 10
    with pytest.raises(ValueError, match="not a positive size: 'lots'"):
        parse_bytes("lots")


@needs_bwrap
def test_exec_runs_in_a_kept_sandbox_that_outlives_the_thread_that_made_it(tmp_path: Path) -> None:
    import threading

    with BwrapRuntime(tmp_path) as rt:
        rt.run("echo hi > a.txt", 5)
        results = []
        worker = threading.Thread(target=lambda: results.append(rt.exec(["cat", "a.txt"], timeout=10)))
        worker.start()
        worker.join()
        assert results[0].returncode == 0 and results[0].stdout == b"hi\n"
        # Made on a thread that has ended: still there, and stdin, stdout and stderr stay apart, as bytes.
        done = rt.exec(
            ["sh", "-c", "cat; printf 'err\\377' >&2; id -u; exit 3"],
            input=b"in\xff\n",
            env={"X": "1"},
            timeout=10,
        )
        assert (done.returncode, done.stderr) == (3, b"err\xff")
        assert done.stdout == b"in\xff\n" + f"{rt.user.uid}\n".encode()
        assert rt.exec(["sh", "-c", "echo $X"], timeout=10).stdout == b"\n"  # env does not persist
        assert rt.exec(["sh", "-c", "echo $OPENAI_API_KEY"], env={}, timeout=10).stdout == b"\n"
    assert rt.exec(["true"], timeout=10).returncode == 0  # after close: a one-shot sandbox


@needs_bwrap
def test_multiprocessing_locks_work_and_cgroup_v1_shares_do_not_read_as_one_cpu(shell: BwrapRuntime) -> None:
    # Test suites use multiprocessing (pytest, pylint -j): its semaphores live in /dev/shm, which bwrap's
    # own /dev leaves root's and 0755. A cgroup-v1 host's cpu.shares (1024) reads as "1 CPU" to tools
    # that honour it; the containers the official grading used have no such file.
    code = "import multiprocessing as m; m.Lock(); import os; print('lock ok', os.listdir('/sys/fs/cgroup'))"
    result = shell.run(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}", 30)
    assert result.exit_code == 0 and "lock ok []" in result.output, result.output


_OWN_SOCKETS = """
import asyncio, multiprocessing, os, socket, sys, tempfile
where = sys.argv[1]
for place in ("/tmp", "/var/tmp", where):
    path = os.path.join(tempfile.mkdtemp(dir=place), "s.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    conn, _ = server.accept()
    client.sendall(b"ping")
    assert conn.recv(4) == b"ping"
    print("stream ok", place == where or place)
dgram = os.path.join(tempfile.mkdtemp(), "d.sock")
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind(dgram)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", dgram)
assert receiver.recv(1) == b"x"
a, b = socket.socketpair()
a.sendall(b"pair")
assert b.recv(4) == b"pair"

async def main():
    path = os.path.join(tempfile.mkdtemp(), "a.sock")
    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
    server = await asyncio.start_unix_server(echo, path)
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"hi\\n")
    line = await reader.readline()
    server.close()
    return line

assert asyncio.run(main()) == b"hi\\n"
with multiprocessing.Manager() as manager:  # a listener on a unix socket the program makes
    shared = manager.dict(a=1)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
    print("all ok", shared["a"])
"""


@needs_bwrap
def test_the_programs_own_unix_sockets_work(shell: BwrapRuntime) -> None:
    # Test suites make unix sockets of their own (servers in /tmp, asyncio, multiprocessing's manager and
    # pools, socketpair): hiding the host's sockets must leave all of them working.
    shell.run("mkdir here", 5)  # the workspace, as the sandbox's user
    code = shlex.quote(_OWN_SOCKETS)
    result = shell.run(f"{shlex.quote(sys.executable)} -c {code} {shell.root / 'here'}", 60)
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        "stream",
        "ok",
        "/tmp",
        "stream",
        "ok",
        "/var/tmp",
        "stream",
        "ok",
        "True",
        "all",
        "ok",
        "1",
    ]


@needs_bwrap
def test_the_bookkeeping_shell_outlives_the_thread_that_started_it(shell: BwrapRuntime) -> None:
    # The agent computes its first patch on a worker thread, which ends with the run: a parent-death
    # signal (tied to that thread) would kill the keeper there, and every later git run would pay a restart.
    import threading

    first = threading.Thread(target=lambda: shell.exec(["true"]))
    first.start()
    first.join()
    keeper = next(k for k in shell.__dict__["_keepers"].values() if k is not None)
    pid = keeper.pid
    time.sleep(0.2)  # a signal on the thread's end would have landed by now
    info = procs.read_proc(pid)
    assert info is not None and info.state not in ("Z", "X")
    assert shell.exec(["sh", "-c", "echo $$"]).returncode == 0 and keeper.pid == pid
