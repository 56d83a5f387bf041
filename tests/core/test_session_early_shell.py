"""Without a sandbox the shell starts while the clone's files are written: it must be the run's one shell,
already in the finished tree, and nothing of it may outlive a workspace that failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.runtime import procs
from devloop.runtime.shell import PersistentShell
from devloop.session import run_agent
from devloop.workspace import Workspace, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for k in range(40):  # enough files that the checkout is still running when the shell starts
        (root / "pkg" / f"m{k}.py").write_text(f"x = {k}\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


@pytest.fixture
def shells(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pid of every shell started."""
    started: list[int] = []
    real = PersistentShell._start

    def start(self: PersistentShell) -> None:
        real(self)
        started.append(self.pid)

    monkeypatch.setattr(PersistentShell, "_start", start)
    return started


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while (info := procs.read_proc(pid)) is not None and info.state not in ("Z", "X"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_early_shell_is_the_runs_only_shell_and_sees_the_whole_tree(
    repo: Path, tmp_path: Path, replies: Any, shells: list[int]
) -> None:
    script = [replies.call("execute_bash", 0, command="ls pkg | wc -l; cat pkg/m39.py"), replies.finish()]
    with ScriptedServer(script) as server:
        settings = load_settings(model="openai/test", base_url=server.url, sandbox="none")
        result = run_agent(repo, "look", settings, tmp_path / "out")
    assert result.exit_status == "finished", result.reason
    seen = server.requests[1]["messages"][-1]["content"]
    # One shell, never restarted: a shell forked from a thread that ended would have been killed by its
    # parent-death signal, and the command would have met a fresh shell and a note saying so.
    assert len(shells) == 1
    assert "40" in seen and "x = 39" in seen and "new shell" not in seen


def test_a_workspace_that_fails_after_the_shell_started_takes_the_shell_with_it(
    repo: Path, tmp_path: Path, replies: Any, shells: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Workspace, seed: object) -> None:
        raise OSError("the disk is full")

    monkeypatch.setattr(Workspace, "_init_gitdir", broken)
    with ScriptedServer([replies.finish()]) as server:
        settings = load_settings(model="openai/test", base_url=server.url, sandbox="none")
        result = run_agent(repo, "look", settings, tmp_path / "out")
    assert result.exit_status == "runtime_error" and "the disk is full" in result.reason
    assert len(shells) == 1 and gone(shells[0])


def test_a_shell_that_cannot_start_is_a_runtime_error_and_the_workspace_goes(
    repo: Path, tmp_path: Path, replies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devloop.runtime.base import RuntimeFailure

    def refuse(self: PersistentShell) -> None:
        raise RuntimeFailure("no bash here")

    monkeypatch.setattr(PersistentShell, "_start", refuse)
    made: list[Workspace] = []
    real = Workspace.create.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        Workspace, "create", classmethod(lambda cls, *a, **k: made.append(real(cls, *a, **k)) or made[-1])
    )
    with ScriptedServer([replies.finish()]) as server:
        settings = load_settings(model="openai/test", base_url=server.url, sandbox="none")
        result = run_agent(repo, "look", settings, tmp_path / "out")
    assert result.exit_status == "runtime_error" and "no bash here" in result.reason
    assert len(made) == 1
    deadline = time.monotonic() + 5
    while made[0].root.parent.exists():  # removed in the background
        assert time.monotonic() < deadline, "the workspace was left behind"
        time.sleep(0.02)
