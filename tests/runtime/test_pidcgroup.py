"""Joining a sandbox's pids cgroup: the process and everything it starts are in it, and counted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devloop.runtime.pidcgroup import PidsCgroup


@pytest.fixture
def cgroup():
    group = PidsCgroup.create(8)
    if group is None:
        pytest.skip("no pids cgroup can be made here (not root, or no delegated hierarchy)")
    yield group
    group.remove()


def test_a_joined_process_and_its_children_are_in_the_cgroup(cgroup: PidsCgroup, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # The child forks a grandchild after joining; both must be listed as the cgroup's processes.
    proc = subprocess.Popen(
        ["sh", "-c", f"sleep 30 & echo $! > {ready}.tmp; mv {ready}.tmp {ready}; wait"],
        preexec_fn=cgroup.joiner(),
    )
    try:
        for _ in range(500):
            if ready.exists():
                break
            subprocess.run(["sleep", "0.01"], check=True)
        grandchild = int(ready.read_text())
        assert {proc.pid, grandchild} <= cgroup.pids()
    finally:
        assert cgroup.kill_all()
        proc.wait(5)
    assert cgroup.pids() == set()


def test_the_cgroup_limit_holds_for_a_joined_process(cgroup: PidsCgroup) -> None:
    # pids.max is 8: a shell that joined cannot start 20 sleeping children.
    out = subprocess.run(
        ["sh", "-c", "n=0; for i in $(seq 20); do sleep 5 & n=$((n+1)); done 2>/dev/null; echo started"],
        preexec_fn=cgroup.joiner(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    cgroup.kill_all()
    assert cgroup.fork_failures() > 0, out.stderr


def test_v1_joins_through_tasks(cgroup: PidsCgroup) -> None:
    # cgroup v1: a single-threaded child writing itself into `tasks` moves the whole process without
    # the global threadgroup lock (whose RCU grace period made each sandbox start 6-10 ms slower).
    if not (cgroup.path / "tasks").exists():
        pytest.skip("cgroup v2: no tasks file")
    assert cgroup.join_file == cgroup.path / "tasks"
