"""What dead runs leave (temp dirs, cgroups) is removed at the next start; nothing of a live owner, or
that devloop did not make, ever is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.runtime import pidcgroup, stale
from devloop.runtime.pidcgroup import PidsCgroup
from devloop.runtime.stale import OWNER_FILE, mark_owner, owner_record, start_time, sweep_temp_dirs


def _dead_record() -> str:
    """The owner record of a process that has exited."""
    code = "from devloop.runtime.stale import owner_record; print(owner_record())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _holder(parent: Path, name: str, record: str | None) -> Path:
    path = parent / name
    path.mkdir()
    (path / "inside").write_text("x")
    if record is not None:
        (path / OWNER_FILE).write_text(record + "\n")
    return path


def test_dirs_of_dead_owners_go_and_everything_else_stays(tmp_path: Path) -> None:
    dead = _dead_record()
    pid, start, boot, ns = owner_record().split()
    dead_ws = _holder(tmp_path, "devloop-ws-dead", dead)
    dead_scratch = _holder(tmp_path, "devloop-sandbox-dead", dead)
    reused = _holder(
        tmp_path, "devloop-shell-reused", f"{pid} {int(start) + 1} {boot} {ns}"
    )  # our pid, not us
    old_boot = _holder(
        tmp_path, "devloop-ws-oldboot", f"{pid} {start} 00000000-0000-0000-0000-000000000000 {ns}"
    )
    kept = {
        "alive": _holder(tmp_path, "devloop-ws-alive", owner_record()),
        "unmarked": _holder(tmp_path, "devloop-ws-unmarked", None),
        "garbage": _holder(tmp_path, "devloop-ws-garbage", "not a record"),
        "other namespace": _holder(tmp_path, "devloop-ws-otherns", f"{dead.split()[0]} 1 {boot} pid:[1]"),
        "not ours by name": _holder(tmp_path, "someone-else", dead),
    }
    target = _holder(tmp_path, "target", dead)
    (tmp_path / "devloop-ws-link").symlink_to(target)  # a link is never followed, its target never removed
    removed = sweep_temp_dirs(tmp_path)
    assert sorted(removed) == sorted([dead_ws, dead_scratch, reused, old_boot])
    assert not any(p.exists() for p in removed)
    for why, path in kept.items():
        assert (path / "inside").exists(), why
    assert (target / "inside").exists() and (tmp_path / "devloop-ws-link").is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory another user owns")
def test_another_users_dir_or_record_is_left_alone(tmp_path: Path) -> None:
    theirs = _holder(tmp_path, "devloop-ws-theirs", _dead_record())
    os.chown(theirs, 65534, 65534)
    planted = _holder(tmp_path, "devloop-ws-planted", _dead_record())
    os.chown(planted / OWNER_FILE, 65534, 65534)  # a record the sandbox user could have written
    assert sweep_temp_dirs(tmp_path) == []
    assert (theirs / "inside").exists() and (planted / "inside").exists()


def test_mark_owner_records_this_process(tmp_path: Path) -> None:
    mark_owner(tmp_path)
    pid, start, *_ = (tmp_path / OWNER_FILE).read_text().split()
    assert int(pid) == os.getpid() and int(start) == start_time(os.getpid())
    assert not stale.dead_owner(tmp_path)


def test_sweep_runs_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(stale, "_swept", False)
    monkeypatch.setattr(stale, "sweep_temp_dirs", lambda: calls.append("dirs"))
    monkeypatch.setattr(pidcgroup, "sweep_cgroups", lambda: calls.append("cgroups"))
    stale.sweep_once()
    stale.sweep_once()
    assert calls == ["dirs", "cgroups"]


def test_cgroups_of_dead_owners_are_killed_and_removed() -> None:
    probe = PidsCgroup.create(16)
    if probe is None:
        pytest.skip("no pids cgroup can be made here")
    parent = probe.path.parent
    probe.remove()
    dead_pid, dead_start = map(int, _dead_record().split()[:2])
    own = os.getpid()
    names = {"dead": f"devloop-{dead_pid}-{dead_start}-0badc0de", "reused": f"devloop-{own}-1-0badc0de",
             "alive": f"devloop-{own}-{start_time(own)}-0badc0de", "legacy alive": f"devloop-{own}-0badc0de",
             "not ours": f"devloop-{dead_pid}-{dead_start}-something"}  # fmt: skip
    paths = {why: parent / name for why, name in names.items()}
    leftover = subprocess.Popen(["sleep", "60"])
    try:
        for path in paths.values():
            path.mkdir()
        (paths["dead"] / "cgroup.procs").write_text(str(leftover.pid))  # a process the dead run left behind
        removed = pidcgroup.sweep_cgroups()
        # Every devloop run sweeps at start, and parallel test workers run devloop in-process: another
        # worker's sweep may have removed these first. Either way they are gone and the leftover is killed.
        assert not paths["dead"].exists() and not paths["reused"].exists()
        assert all(p.name.startswith("devloop-") for p in removed)  # never a cgroup that is not devloop's
        assert leftover.wait(5) == -9
        for why in ("alive", "legacy alive", "not ours"):
            assert paths[why].exists(), why
    finally:
        leftover.kill()
        for path in paths.values():
            PidsCgroup(path).remove()
