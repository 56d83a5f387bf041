"""The user's tree is never touched; the patch is the workspace's diff, without binary or scratch files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devloop.workspace import Workspace, WorkspaceError


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    sh(repo, "git", "init", "-q")
    (repo / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    (repo / "mod.py").write_text("x = 1\n")
    (repo / "data.bin").write_bytes(b"\x00\x01\x02")
    (repo / ".gitignore").write_text("*.log\n")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    # uncommitted work of every kind
    (repo / "mod.py").write_text("x = 2\n")  # unstaged
    (repo / "staged.py").write_text("s = 1\n")
    sh(repo, "git", "add", "staged.py")  # staged
    (repo / "untracked.py").write_text("u = 1\n")  # untracked
    (repo / "debug.log").write_text("ignored\n")  # ignored
    return repo


def tree_state(repo: Path) -> tuple[str, str, dict[str, bytes]]:
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }
    return sh(repo, "git", "status", "--porcelain"), sh(repo, "git", "rev-parse", "HEAD"), files


def test_workspace_holds_uncommitted_changes_and_leaves_user_tree_untouched(user_repo: Path) -> None:
    before = tree_state(user_repo)
    branches = sh(user_repo, "git", "branch", "-a")
    ws = Workspace.create(user_repo)
    try:
        assert ws.root != user_repo
        assert (ws.root / "mod.py").read_text() == "x = 2\n"
        assert (ws.root / "staged.py").read_text() == "s = 1\n"
        assert (ws.root / "untracked.py").read_text() == "u = 1\n"
        assert not (ws.root / "debug.log").exists()
        assert ws.diff() == ""  # the starting state is the baseline
        (ws.root / "mod.py").write_text("x = 3\n")
        sh(ws.root, "git", "checkout", "-q", "-b", "agent-branch")  # the agent's own git commands
        assert "+x = 3" in ws.diff()
    finally:
        ws.cleanup()
    assert tree_state(user_repo) == before
    assert sh(user_repo, "git", "branch", "-a") == branches
    assert not ws.root.exists()


def test_patch_excludes_binary_and_scratch_and_keeps_crlf(user_repo: Path) -> None:
    ws = Workspace.create(user_repo)
    try:
        (ws.root / "data.bin").write_bytes(b"\x00\xff")
        (ws.root / ".devloop").mkdir()
        (ws.root / ".devloop" / "repro.py").write_text("print(1)\n")
        (ws.root / "mod.py.orig").write_text("backup\n")
        (ws.root / "crlf.txt").write_bytes(b"one\r\nTWO\r\n")
        (ws.root / "new_file.py").write_text("n = 1\n")
        patch = ws.diff()
    finally:
        ws.cleanup()
    assert "data.bin" not in patch and ".devloop" not in patch and ".orig" not in patch
    assert "+TWO\r\n" in patch and "-two\r\n" in patch
    assert "new_file.py" in patch
    # the patch applies cleanly to the user's tree state
    check = subprocess.run(
        ["git", "apply", "--check", "-"],
        cwd=user_repo,
        input=patch.encode(),
        capture_output=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_plain_directory_is_copied(tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    (src / "a.py").write_text("a = 1\n")
    ws = Workspace.create(src)
    try:
        assert ws.kind == "copy"
        (ws.root / "a.py").write_text("a = 2\n")
        assert "+a = 2" in ws.diff()
    finally:
        ws.cleanup()
    assert (src / "a.py").read_text() == "a = 1\n"
    assert not (src / ".git").exists()


def test_missing_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="repository not found"):
        Workspace.create(tmp_path / "nope")
