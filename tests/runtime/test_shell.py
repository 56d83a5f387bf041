"""PersistentShell behaviour: persistence, exit codes, stdin, recovery, output handling, cleanup."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from devloop.runtime import procs
from devloop.runtime.base import RuntimeFailure
from devloop.runtime.local import LocalRuntime
from devloop.runtime.shell import PersistentShell


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for a reaper counts as dead."""
    info = procs.read_proc(pid)
    return info is not None and info.state not in ("Z", "X")


def wait_dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_written(path: Path, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path.name} was not written"
        time.sleep(0.01)


def test_starts_in_root_and_keeps_cwd_env_functions_aliases(shell: LocalRuntime) -> None:
    assert shell.run("pwd", 5).output.strip() == str(shell.root)
    shell.run("mkdir -p sub/dir && cd sub/dir", 5)
    shell.run("export GREETING=hello; LOCAL_VAR=kept", 5)
    shell.run('greet() { echo "$GREETING from $1"; }', 5)
    shell.run("alias say='echo said'", 5)
    result = shell.run("pwd; greet fn; echo $LOCAL_VAR; say it", 5)
    assert result.output.splitlines() == [str(shell.root / "sub/dir"), "hello from fn", "kept", "said it"]
    assert shell.cwd == str(shell.root / "sub/dir")


def test_exit_codes_and_stderr(shell: LocalRuntime) -> None:
    assert shell.run("true", 5).exit_code == 0
    assert shell.run("false", 5).exit_code == 1
    assert shell.run("(exit 42)", 5).exit_code == 42
    result = shell.run("echo out; echo err >&2; ls /definitely/not/here", 5)
    assert result.exit_code == 2
    assert "out\nerr\n" in result.output
    assert "/definitely/not/here" in result.output


def test_syntax_error_does_not_break_the_shell(shell: LocalRuntime) -> None:
    result = shell.run('echo "unbalanced', 5)
    assert result.exit_code == 2
    assert "bash: line 1: unexpected EOF" in result.output  # scratch file path is not shown
    assert shell.run("if then fi", 5).exit_code == 2
    assert shell.run("echo fine", 5).output == "fine\n"


def test_multiline_and_heredoc(shell: LocalRuntime) -> None:
    result = shell.run("cat > f.txt <<'EOF'\n$NOT_EXPANDED\nline two\nEOF\ncat f.txt\nwc -l < f.txt", 5)
    assert result.output == "$NOT_EXPANDED\nline two\n2\n"


@pytest.mark.parametrize("command", ["read x; echo read=$?", 'python3 -c "input()"', "cat"])
def test_stdin_is_empty_so_nothing_waits_for_input(shell: LocalRuntime, command: str) -> None:
    started = time.monotonic()
    result = shell.run(command, 30)
    assert time.monotonic() - started < 2.0
    assert not result.timed_out
    if command.startswith("read"):
        assert result.output == "read=1\n"
    if command.startswith("python3"):
        assert result.exit_code == 1 and "EOFError" in result.output


def test_timeout_kills_the_whole_tree_and_keeps_the_session(shell: LocalRuntime) -> None:
    shell.run("mkdir keep && cd keep && export KEEP=yes", 5)
    command = "sleep 1000 & echo $! > bg.pid; sh -c 'echo $$ > fg.pid; exec sleep 1000'"
    started = time.monotonic()
    result = shell.run(command, 0.5)
    assert time.monotonic() - started < 3.0
    assert result.timed_out and result.exit_code is None
    assert "killed" in result.note
    pids = [int((shell.root / "keep" / name).read_text()) for name in ("bg.pid", "fg.pid")]
    assert all(wait_dead(pid) for pid in pids), pids
    after = shell.run("pwd; echo $KEEP", 5)
    assert after.output.splitlines() == [str(shell.root / "keep"), "yes"]
    assert after.exit_code == 0


def test_partial_output_survives_a_timeout(shell: LocalRuntime) -> None:
    result = shell.run("echo before; sleep 1000", 0.5)
    assert result.timed_out
    assert result.output.startswith("before\n")


def test_builtin_loop_is_interrupted_and_the_shell_keeps_its_state(shell: LocalRuntime) -> None:
    shell.run("mkdir loop && cd loop && export KEPT=1", 5)
    old_pid = shell.pid
    started = time.monotonic()
    result = shell.run("f() { while true; do :; done; }; f; for i in $(seq 100); do sleep 1; done", 0.5)
    assert time.monotonic() - started < 2.5  # not the 100 s the loop would take
    assert result.timed_out and result.exit_code is None
    assert "kept its working directory and variables" in result.note
    assert shell.pid == old_pid
    after = shell.run('pwd; echo "[$KEPT]"', 5)
    assert after.output.splitlines() == [str(shell.root / "loop"), "[1]"]


def test_builtin_loop_that_ignores_the_interrupt_restarts_the_shell_in_the_same_cwd(
    shell: LocalRuntime,
) -> None:
    shell.run("mkdir loop && cd loop && export GONE=1", 5)
    old_pid = shell.pid
    result = shell.run("trap '' USR2; while true; do :; done", 0.5)
    assert result.timed_out and result.exit_code is None
    assert "new shell" in result.note
    assert wait_dead(old_pid)
    after = shell.run('pwd; echo "[$GONE]"', 5)
    assert after.output.splitlines() == [str(shell.root / "loop"), "[]"]


def test_exit_restarts_the_shell_with_a_note(shell: LocalRuntime) -> None:
    shell.run("mkdir gone && cd gone && export GONE=1", 5)
    result = shell.run("echo bye; exit 3", 5)
    assert result.exit_code == 3
    assert result.output == "bye\n"
    assert "exited (status 3)" in result.note and "new shell" in result.note
    after = shell.run('pwd; echo "[$GONE]"', 5)
    assert after.output.splitlines() == [str(shell.root / "gone"), "[]"]
    assert after.note == ""


def test_restart_falls_back_to_root_when_cwd_vanished(shell: LocalRuntime) -> None:
    shell.run("mkdir tmpdir && cd tmpdir", 5)
    result = shell.run(f"rm -rf {shell.root / 'tmpdir'}; exit", 5)
    assert "new shell" in result.note
    assert shell.run("pwd", 5).output.strip() == str(shell.root)


def test_exec_redirection_inside_a_command_does_not_leak(shell: LocalRuntime) -> None:
    shell.run("exec > /dev/null 2>&1", 5)
    assert shell.run("echo visible", 5).output == "visible\n"


def test_removing_the_scratch_dir_does_not_break_the_shell(shell: LocalRuntime) -> None:
    shell.run(f"rm -rf {shell.scratch_dir}", 5)
    assert shell.run("echo again", 5).output == "again\n"


def test_one_command_file_serves_every_command_and_what_replaces_it_is_never_followed(
    shell: LocalRuntime, tmp_path: Path
) -> None:
    # The command file is rewritten in place (no file made and removed per command). A command that
    # swaps it for a link, a directory, a hard link or a FIFO (unconfined; a sandbox's command dir is read-only)
    # gets a fresh file next time: what the link names is never written.
    for i in range(5):
        assert shell.run(f"echo {i}", 5).output == f"{i}\n"
    assert [p.name for p in shell.cmd_dir.iterdir()] == ["cmd.sh"]
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    hard = tmp_path / "hard.txt"
    hard.write_text("x\n")
    script = shell.cmd_dir / "cmd.sh"
    for swap in (
        f"ln -sf {victim} {script}",
        f"rm -f {script}; mkdir {script}",
        f"rm -f {script}; ln {hard} {script}",
        f"rm -f {script}; mkfifo {script}",  # opened for writing, it would block the host
    ):
        shell.run(swap, 5)
        assert shell.run("echo after the swap", 5).output == "after the swap\n", swap
        assert victim.read_text() == "the user's file\n" and hard.read_text() == "x\n"
        assert script.is_file() and not script.is_symlink() and script.stat().st_nlink == 1
    assert shell.run("echo $((1 + 2))", 5).output == "3\n"  # shorter than the last: nothing left over


def test_background_job_holding_output_open_does_not_block(shell: LocalRuntime) -> None:
    # The job holds the output open until a file appears that nothing makes: a run that waited for it could
    # only end at its timeout, whatever the machine's load (no wall-clock bound to guess).
    result = shell.run("(until [ -e never-made ]; do sleep 0.05; done; echo late) & echo now", 10)
    assert not result.timed_out, result
    assert result.output.startswith("now\n") and result.exit_code == 0
    # The job it left is stopped with the command, and the model is told. How many processes it counts
    # depends on where the subshell's loop was when the command ended (itself, a `sleep`, a fork not yet
    # exec'd): one to three.
    assert re.search(
        r"left (1 process|[23] processes) running in the background; (it was|they were) stopped", result.note
    )
    assert "late" not in result.output.splitlines()
    assert "late" not in shell.run("sleep 0.1; echo next", 5).output.splitlines()


def test_unicode_and_invalid_utf8(shell: LocalRuntime) -> None:
    assert shell.run("printf 'h\\xc3\\xa9llo \\xe2\\x9c\\x93\\n'", 5).output == "héllo ✓\n"
    assert shell.run("echo 'ünïcode arg ✓'", 5).output == "ünïcode arg ✓\n"
    result = shell.run("printf 'ok\\xff\\xfeend'", 5)
    assert result.output == "ok\ufffd\ufffdend"
    assert result.output_bytes == 7


def test_huge_output_is_bounded_with_head_tail_and_full_file(tmp_path: Path) -> None:
    size = 50_000_000
    with LocalRuntime(tmp_path, read_cap=1 << 20) as rt:
        result = rt.run(f"yes | head -c {size}", 60)
        assert result.exit_code == 0
        assert result.output_bytes == size
        assert result.output_path is not None and Path(result.output_path).stat().st_size == size
        assert len(result.output) < (1 << 20) + 200
        assert result.output.startswith("y\ny\n") and result.output.endswith("y\ny\n")
        assert f"{size - (1 << 20):,} bytes elided; full output in {result.output_path}" in result.output


def test_runaway_output_is_stopped(tmp_path: Path) -> None:
    with LocalRuntime(tmp_path, max_output_bytes=2_000_000) as rt:
        started = time.monotonic()
        result = rt.run("yes", 60)
        assert time.monotonic() - started < 5.0
        assert result.exit_code is None and not result.timed_out
        assert "output passed 2,000,000 bytes" in result.note
        assert rt.run("echo still here", 5).output == "still here\n"


def test_what_a_command_leaves_running_ends_with_it(tmp_path: Path) -> None:
    with LocalRuntime(tmp_path) as rt:
        result = rt.run("sleep 1000 & echo $! > bg.pid; (setsid sleep 1000 & echo $! > daemon.pid)", 5)
        # A double-forked daemon in its own session: only the subreaper flag keeps it in the shell's tree.
        bg, daemon = (int((tmp_path / name).read_text()) for name in ("bg.pid", "daemon.pid"))
        assert wait_dead(bg) and wait_dead(daemon)
        assert "stopped when it ended" in result.note
        assert rt.run("echo quiet", 5).note == ""  # nothing left over, nothing said


def test_close_kills_the_shell_and_removes_scratch(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path)
    rt.run("true", 5)
    shell_pid = rt.pid
    scratch = rt.scratch_dir
    assert alive(shell_pid) and scratch.is_dir()
    rt.close()
    assert wait_dead(shell_pid)
    assert not scratch.exists()
    rt.close()  # idempotent
    with pytest.raises(RuntimeFailure, match="closed"):
        rt.run("true", 5)


def test_closing_an_idle_shell_reads_no_process_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped, the shell (a child subreaper) and its wrapper can have no other process below them, so
    # the close does not read every process on the machine to find them.
    if not (procs.subreapers() and procs.children_lists()):
        pytest.skip("no child subreapers or /proc children lists here")
    prefix = ["sh", "-c", '"$@"; :', "wrapper"]
    rt = PersistentShell(tmp_path, spawn_prefix=prefix)
    rt.run("true", 5)
    own = set(rt._session.spare)
    assert len(own) == 2
    full_reads: list[int] = []
    real = procs.snapshot
    monkeypatch.setattr(procs, "snapshot", lambda **kw: full_reads.append(1) or real(**kw))
    rt.close()
    assert full_reads == []
    assert all(wait_dead(pid) for pid in own)


def test_closing_a_shell_that_still_runs_something_ends_it_all(tmp_path: Path) -> None:
    # A command running at close (a Ctrl-C, a cancelled run): its processes are below the stopped shell,
    # so the close searches /proc and ends them all, a daemon in its own session included.
    import threading

    rt = LocalRuntime(tmp_path)
    cmd = "sleep 1000 & echo $! > bg.pid; (setsid sleep 1000 & echo $! > daemon.pid); sleep 1000"

    def run() -> None:
        with contextlib.suppress(RuntimeFailure):  # closed under it
            rt.run(cmd, 30)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    wait_written(tmp_path / "daemon.pid")
    shell_pid = rt.pid
    pids = [shell_pid, *(int((tmp_path / name).read_text()) for name in ("bg.pid", "daemon.pid"))]
    rt.close()
    assert all(wait_dead(pid) for pid in pids)
    worker.join(10)


def test_closing_a_shell_that_exited_still_ends_its_orphans(tmp_path: Path) -> None:
    # The shell gone, its orphans are no longer below it: the close finds them by their session.
    rt = LocalRuntime(tmp_path)
    rt._session.send("sleep 1000 & echo $! > bg.pid; exit\n")
    wait_written(tmp_path / "bg.pid")
    bg = int((tmp_path / "bg.pid").read_text())
    assert wait_dead(rt.pid) and alive(bg)
    rt.close()
    assert wait_dead(bg)


def test_given_scratch_dir_is_kept_but_emptied(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    rt = LocalRuntime(tmp_path / ".", scratch_dir=scratch)
    result = rt.run("echo hi", 5)
    assert result.output_path is not None and Path(result.output_path).parent == scratch / "out"
    assert Path(result.output_path).read_text() == "hi\n"
    rt.close()
    assert sorted(p.name for p in scratch.iterdir()) == ["cmd", "out"]
    assert not any((scratch / "cmd").iterdir()) and not any((scratch / "out").iterdir())


def test_garbage_collected_shell_does_not_linger(tmp_path: Path) -> None:
    import gc

    rt = LocalRuntime(tmp_path)
    shell_pid = rt.pid
    del rt
    gc.collect()
    assert wait_dead(shell_pid)


def test_spawn_prefix_wraps_the_shell_and_is_spared_on_timeout(tmp_path: Path) -> None:
    # A wrapper that stays as the shell's parent, as `bwrap` does.
    prefix = ["sh", "-c", 'DEVLOOP_WRAPPED=1 "$@"; :', "wrapper"]
    with PersistentShell(tmp_path, spawn_prefix=prefix) as rt:
        wrapper = rt.pid
        assert rt.run("echo $DEVLOOP_WRAPPED", 5).output == "1\n"
        result = rt.run("sleep 1000", 0.3)
        assert result.timed_out and "kept its working directory" in result.note
        assert rt.pid == wrapper and alive(wrapper)
        assert rt.run("echo ok", 5).output == "ok\n"
    assert wait_dead(wrapper)


def test_environment_is_non_interactive(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "BASH_ENV": "/nonexistent/rc", "MINE": "x", "PAGER": "less"}
    with LocalRuntime(tmp_path, env=env) as rt:
        out = rt.run('echo "$MINE $PAGER $GIT_PAGER $TERM ${BASH_ENV-unset} $GIT_TERMINAL_PROMPT"', 5)
        assert out.output == "x cat cat dumb unset 0\n"


def test_startup_failures_are_runtime_failures(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="could not start the shell"):
        PersistentShell(tmp_path, spawn_prefix=["/nonexistent/wrapper"])
    with pytest.raises(RuntimeFailure, match="exited: boom"):
        PersistentShell(tmp_path, spawn_prefix=["sh", "-c", "echo boom; exit 1", "x"])
    with pytest.raises(RuntimeFailure, match="not a directory"):
        LocalRuntime(tmp_path / "missing")


def test_the_next_output_file_is_made_after_a_command_and_noclobber_does_not_stop_it(tmp_path: Path) -> None:
    # The shell makes the next command's output file once it has reported one, so that the file's
    # creation is not part of the next command's time; a command that sets noclobber changes nothing.
    with LocalRuntime(tmp_path) as rt:
        assert rt.run("set -o noclobber; echo first", 5).output == "first\n"
        made = _made(rt.out_dir / "out-2.log")
        assert made.stat().st_size == 0
        second = rt.run("echo second; echo err >&2", 5)
        assert second.output == "second\nerr\n" and second.output_path == str(made)
        assert rt.run("echo third > kept.txt && cat kept.txt", 5).output == "third\n"
        _made(rt.out_dir / "out-4.log")
        assert sorted(p.name for p in rt.out_dir.iterdir()) == [f"out-{n}.log" for n in range(1, 5)]


def test_release_later_kills_at_once_and_removes_the_scratch_in_the_background(tmp_path: Path) -> None:
    from devloop.config import load_settings
    from devloop.runtime.later import wait_removed
    from devloop.session.build import runtime_options
    from devloop.session_settings import SessionSettings

    rt = LocalRuntime(tmp_path, release_later=True)
    rt.run("sleep 30 & echo started", 5)
    shell_pid, scratch = rt.pid, rt.scratch_dir
    rt.close()
    assert not alive(shell_pid)  # killed and reaped by close itself, not later
    wait_removed()
    assert not scratch.exists()
    # A process that closes such a shell, or leaves it to its exit, ends with the scratch removed.
    import subprocess
    import sys

    for end in ("rt.close()", "pass"):
        code = (
            "import sys\nfrom pathlib import Path\nfrom devloop.runtime.local import LocalRuntime\n"
            f"rt = LocalRuntime(Path(sys.argv[1]), release_later=True)\nrt.run('echo hi', 5)\n"
            f"print(rt.scratch_dir)\n{end}\n"
        )
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert not Path(done.stdout.strip()).exists(), end
    # A run's own shell, with or without the sandbox, releases its scratch that way.
    group = SessionSettings.of(load_settings()).sandbox
    assert (
        runtime_options("none", group, {})["release_later"]
        and runtime_options("bwrap", group, {})["release_later"]
    )


def _made(path: Path, within: float = 5.0) -> Path:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was not made"
        time.sleep(0.005)
    return path


def _children() -> set[int]:
    return {p.pid for p in procs.snapshot().values() if p.ppid == os.getpid()}


def test_work_done_while_the_shell_starts_is_there_for_its_first_command(tmp_path: Path) -> None:
    before = _children()
    spawned: list[int] = []

    def work() -> None:
        # The shell is spawned (a child of this process) but has not been waited for yet.
        spawned.extend(_children() - before)
        (tmp_path / "written-meanwhile").write_text("here\n")

    with LocalRuntime(tmp_path, while_starting=work) as rt:
        assert rt.pid in spawned
        assert rt.run("cat written-meanwhile", 5).output == "here\n"


def test_an_error_while_the_shell_starts_ends_the_shell_and_propagates(tmp_path: Path) -> None:
    before = _children()
    spawned: list[int] = []

    def work() -> None:
        spawned.extend(_children() - before)
        raise ValueError("the commit is missing")

    with pytest.raises(ValueError, match="the commit is missing"):
        LocalRuntime(tmp_path, while_starting=work)
    assert spawned and all(wait_dead(pid) for pid in spawned)


def test_root_with_spaces_and_unicode(tmp_path: Path) -> None:
    root = tmp_path / "my wörk 'dir'"
    root.mkdir()
    with LocalRuntime(root) as rt:
        assert rt.run("pwd", 5).output.strip() == str(root)
        rt.run("exit 1", 5)
        assert rt.run("pwd", 5).output.strip() == str(root)
