"""Resource limits that hold: the run's disk quota, fork bombs reported to the model, and nothing that
outlives a step. Each attack runs through the real BwrapRuntime."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devloop.runtime import pidcgroup, procs
from devloop.runtime.bwrap import BwrapRuntime, probe_bwrap
from devloop.runtime.limits import MIB, Limits
from devloop.runtime.stale import sweep_temp_dirs

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]

DISK = 20 * MIB
DISK_LIMITS = Limits(disk_bytes=DISK, max_processes=256, max_output_bytes=8 * MIB)


def _allocated(tree: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in tree.rglob("*") if p.is_file() and not p.is_symlink())


def test_many_files_past_the_disk_limit_are_stopped_and_the_model_told(workspace: Path, escape) -> None:
    with BwrapRuntime(workspace, limits=DISK_LIMITS) as rt:
        with escape("fill the disk: 80 MiB in 8 MiB files (limit 20 MiB)", by="disk quota (walk every tick)"):
            started = time.monotonic()
            result = rt.run(
                "for i in $(seq 10); do head -c 8M /dev/zero > part$i.bin; sleep 0.2; done; echo done", 30
            )
            took = time.monotonic() - started
            assert took < 2.5, took
            assert "done" not in result.output  # the loop in the shell was stopped too, not only its children
            assert result.exit_code is None
            note = result.note
            assert "over its disk limit of 20 MiB" in note and "so the command was stopped" in note
            assert "delete files" in note and re.search(
                r"part\d+\.bin 8 MiB", note
            )  # the largest files are named
            assert "\n" not in note
            assert _allocated(workspace) <= DISK + 4 * 8 * MIB  # what a (late, loaded) tick lets through
        with escape("fill the disk: all at once, then wait", by="disk quota (walk every tick)"):
            rt.run("rm -f part*.bin", 10)
            started = time.monotonic()
            result = rt.run("for i in $(seq 6); do head -c 8M /dev/zero > burst$i.bin; done; sleep 30", 40)
            assert time.monotonic() - started < 2.5
            assert "over its disk limit" in result.note
        # While over the limit, a command that does not write runs normally (and is told), and deleting works.
        listed = rt.run("ls burst*.bin | wc -l", 10)
        assert listed.exit_code == 0 and listed.output.strip() == "6"
        assert "over its disk limit" in listed.note
        cleaned = rt.run("rm -f burst*.bin; echo cleaned", 10)
        assert cleaned.output == "cleaned\n" and cleaned.note == ""
        assert rt.run("head -c 4M /dev/zero > ok.bin; echo alive", 10).output == "alive\n"
        assert rt.disk_peak_bytes is not None and rt.disk_peak_bytes >= DISK


def test_private_tmp_cannot_bypass_the_disk_limit(workspace: Path, escape) -> None:
    with BwrapRuntime(workspace, limits=DISK_LIMITS) as rt:
        with escape(
            "fill the disk through the sandbox's /tmp and HOME", by="tmpfs size cap = min(disk, memory)"
        ):
            result = rt.run("for d in /tmp /var/tmp \"$HOME\"; do for i in 1 2 3 4; do head -c 8M /dev/zero"
                            " > $d/f$i 2>/dev/null; done; cat $d/f* | wc -c; done", 30)  # fmt: skip
            stored = [int(line) for line in result.output.split()]
            assert len(stored) == 3 and all(size <= DISK for size in stored), result.output
        assert rt.run("echo alive", 10).output == "alive\n"


def test_one_file_is_capped_at_the_disk_limit(workspace: Path) -> None:
    with BwrapRuntime(workspace, limits=DISK_LIMITS) as rt:
        result = rt.run("head -c 100M /dev/zero > one.bin; echo rc=$?", 20)
        assert "rc=153" in result.output  # SIGXFSZ: RLIMIT_FSIZE is min(1 GiB, disk limit)
        assert (workspace / "one.bin").stat().st_size <= DISK


def _bomb_check(rt: BwrapRuntime, limit: int, escape, by: str) -> str:
    with escape(f"fork bomb :(){{ :|:& }};: is reported ({by})", by=f"{by}; the note names the limit"):
        started = time.monotonic()
        result = rt.run(":(){ :|:& };:; sleep 2", 30)
        assert time.monotonic() - started < 15
        assert f"reached the sandbox's limit of {limit} processes; forks failed" in result.note
        # Nothing the bomb started outlives the step: only the sandbox's own chain and shell are left.
        spare = rt._session.spare
        table = procs.snapshot()
        assert procs.descendants(rt.pid, table) | {rt.pid} <= spare
        if rt.cgroup is not None:
            assert rt.cgroup.pids() <= spare
        assert rt.run("echo alive", 10).output == "alive\n"
        return result.note


def test_fork_bomb_is_reported_and_ends_with_its_step(workspace: Path, escape) -> None:
    with BwrapRuntime(workspace, limits=Limits(max_processes=120)) as rt:
        note = _bomb_check(rt, 120, escape, rt.process_guard)
        if rt.cgroup is not None:
            assert "refused)" in note  # counted by the pids cgroup


def test_fork_bomb_without_a_cgroup_is_reported_from_its_output(workspace: Path, escape, monkeypatch) -> None:
    monkeypatch.setattr("devloop.runtime.bwrap.BwrapRuntime._process_cgroup", lambda self: None)
    with BwrapRuntime(workspace, limits=Limits(max_processes=60)) as rt:
        assert rt.process_guard == "RLIMIT_NPROC"
        note = _bomb_check(rt, 60, escape, "RLIMIT_NPROC")
        assert "as its output shows" in note


# An eval-like parent: the protocols' LocalExecutor with two workers, each running a sandboxed command
# that sleeps. Every process involved carries the marker (argv for the workers, environment inside).
EVAL_PARENT = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path
    from devloop.eval.executors import LocalExecutor
    from devloop.runtime.bwrap import BwrapRuntime

    def job(arg):
        parent, marker = arg
        rt = BwrapRuntime(Path(tempfile.mkdtemp(dir=parent)), extra_env={"DEVLOOP_TEST_MARKER": marker})
        rt.run("sleep 300", 600)

    parent, marker = sys.argv[1:]
    executor = LocalExecutor(2)
    futures = [executor.submit(job, (parent, marker)) for _ in range(2)]
    futures[0].result()
""")


def _owner_pid(directory: Path) -> int | None:
    try:
        return int((directory / ".devloop-owner").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _marked(marker: str) -> list[int]:
    """Live host processes with `marker` in their argv or environment."""
    needle = marker.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
            if state in (b"Z", b"X"):
                continue
            if (
                needle in Path(f"/proc/{name}/cmdline").read_bytes()
                or needle in Path(f"/proc/{name}/environ").read_bytes()
            ):
                found.append(int(name))
        except OSError:
            continue
    return found


def test_nothing_outlives_an_eval_killed_with_sigkill(tmp_path: Path, escape, waiter) -> None:
    marker = f"devloop-kill9-{secrets.token_hex(6)}"
    # A temp dir of its own: another test's sandbox start sweeps the shared one, dead owners' dirs included.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", EVAL_PARENT, str(tmp_path), marker],
                              stdout=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(private_tmp)})  # fmt: skip
    try:

        def sleeping() -> list[int]:
            return [p for p in _marked(marker) if _cmdline(p) == b"sleep\x00300\x00"]

        assert waiter(lambda: len(sleeping()) == 2, within=30), "the two sandboxed commands did not start"
        before = _marked(marker)
        assert len(before) > 4  # the parent, two workers, their sandboxes (bwrap, shell, sleep)
        workers = [
            pid for pid in before if (procs.read_proc(pid) or procs.read_proc(os.getpid())).ppid == parent.pid
        ]
        assert len(workers) == 2
        with escape(
            "kill -9 of an eval with 2 workers running sandboxed commands",
            by="PR_SET_PDEATHSIG on pool workers and sandbox launchers",
        ):
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait(5)
            assert waiter(lambda: not _marked(marker), within=5), f"left running: {_marked(marker)}"
        # What the dead workers left (scratch dirs, cgroups) goes at the next start, and nothing else.
        left = [d for d in private_tmp.glob("devloop-sandbox-*") if _owner_pid(d) in workers]
        assert len(left) == 2
        groups = [g for parent_dir in pidcgroup._candidates() for g in parent_dir.glob("devloop-*")
                  if g.name.split("-")[1] in {str(w) for w in workers}]  # fmt: skip
        sweep_temp_dirs(private_tmp)
        pidcgroup.sweep_cgroups()
        assert not any(d.exists() for d in left) and not any(g.exists() for g in groups)
    finally:
        parent.kill()
        for pid in _marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
