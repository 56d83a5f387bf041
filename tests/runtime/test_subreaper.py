"""The local shell is a child subreaper that dies with devloop, whether a launcher set the flags (no
fork of the interpreter) or a preexec_fn did (where the launcher is missing or fails)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devloop.runtime import procs
from devloop.runtime import subreaper as reaping
from devloop.runtime.local import LocalRuntime

needs_launcher = pytest.mark.skipif(reaping.launcher() is None, reason="no launcher here (perl, Linux prctl)")


def _running(pid: int) -> bool:
    info = procs.read_proc(pid)  # a zombie waiting for its reaper has ended
    return info is not None and info.state not in ("Z", "X")


def _ends(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _running(pid)


def _orphan_parent(rt: LocalRuntime) -> int:
    """The parent of a double-forked daemon in its own session, read while the command runs (the
    command's end kills it)."""
    said = rt.run(
        "(setsid sleep 1000 & echo $! > daemon.pid); cut -d' ' -f4 /proc/$(cat daemon.pid)/stat", 10
    )
    return int(said.output)


@pytest.fixture
def fresh_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaping, "_failed", False)  # and back as it was, whatever the test does


@needs_launcher
def test_the_shell_starts_through_the_launcher_as_a_subreaper(tmp_path: Path, fresh_launcher: None) -> None:
    with LocalRuntime(tmp_path) as rt:
        assert rt._session.via_launcher
        assert Path(f"/proc/{rt.pid}/comm").read_text().strip() == "bash"  # perl exec'd into it
        assert _orphan_parent(rt) == rt.pid


def test_a_launcher_that_fails_leaves_the_shell_to_the_preexec_fn(
    tmp_path: Path, fresh_launcher: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when prctl is refused: the launcher says why and exits before the shell runs.
    failing = (
        sys.executable,
        "-c",
        "import sys; sys.exit('devloop launcher: PR_SET_CHILD_SUBREAPER: refused')",
    )
    monkeypatch.setattr(reaping, "_launcher_code", lambda: failing)
    with LocalRuntime(tmp_path) as rt:
        assert not rt._session.via_launcher and reaping._failed
        assert rt.run("echo up", 5).output == "up\n"
        assert _orphan_parent(rt) == rt.pid  # the preexec_fn made it a subreaper
    with LocalRuntime(tmp_path) as again:  # not tried again in this process
        assert not again._session.via_launcher


def test_a_launcher_that_is_gone_leaves_the_shell_to_the_preexec_fn(
    tmp_path: Path, fresh_launcher: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reaping, "_launcher_code", lambda: (str(tmp_path / "no-perl"), "-e", ""))
    with LocalRuntime(tmp_path) as rt:
        assert not rt._session.via_launcher and reaping._failed
        assert rt.run("echo up", 5).output == "up\n"


def test_a_broken_shell_does_not_blame_the_launcher(tmp_path: Path, fresh_launcher: None) -> None:
    from devloop.runtime.base import RuntimeFailure
    from devloop.runtime.shell import PersistentShell

    with pytest.raises(RuntimeFailure, match="exited"):
        PersistentShell(tmp_path, spawn_prefix=["sh", "-c", "exit 3", "wrapper"])
    assert not reaping._failed


@needs_launcher
def test_the_launcher_runs_nothing_once_its_parent_has_gone(tmp_path: Path) -> None:
    code = reaping.launcher()
    assert code is not None
    not_the_parent = [*code[:-1], "1"]  # pid 1: what a child's parent is once devloop has died
    done = subprocess.run(
        [*not_the_parent, "sh", "-c", "echo ran"], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "ran" not in done.stdout
    assert "devloop has gone" in done.stderr


_HOLDER = """
import sys
from pathlib import Path
from devloop.runtime import subreaper
if sys.argv[2] == "preexec":
    subreaper.launcher_failed()
from devloop.runtime.local import LocalRuntime
rt = LocalRuntime(Path(sys.argv[1]))
print(rt.pid, rt._session.via_launcher, flush=True)
rt.run("sleep 1000", 2000)  # busy: the shell is not reading the pipe whose end would also end it
"""


@pytest.mark.parametrize("way", ["launcher", "preexec"])
def test_a_killed_devloop_takes_its_shell_along(tmp_path: Path, way: str) -> None:
    if way == "launcher" and reaping.launcher() is None:
        pytest.skip("no launcher here")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLDER), str(tmp_path), way],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    pid = "0"
    try:
        assert holder.stdout is not None
        pid, via = holder.stdout.readline().split()
        assert via == str(way == "launcher")
        assert _running(int(pid))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert _ends(int(pid))
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        with contextlib.suppress(OSError):  # the command's `sleep`, orphaned with its shell gone
            os.killpg(int(pid), signal.SIGKILL)
