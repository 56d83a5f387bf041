"""Checkpoints on private refs and rollback in a real git workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.feedback.checkpoints import Checkpoints
from devloop.workspace import Workspace, git


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("a = 1\n")
    (repo / "b.py").write_text("b = 1\n")
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    return Workspace.create(repo, parent=tmp_path)


def test_save_writes_a_private_ref_and_moves_nothing_else(ws: Workspace) -> None:
    head = git(ws.root, "rev-parse", "HEAD")
    heads = git(ws.root, "for-each-ref", "refs/heads")
    (ws.root / "a.py").write_text("a = 2\n")
    cps = Checkpoints(ws)
    first = cps.save(1, ws.diff(), note="1 of 1 pass")
    (ws.root / "a.py").write_text("a = 3\n")
    second = cps.save(2, ws.diff())
    # The refs live in devloop's private git dir, outside the tree the model can write.
    assert ws.run_git("rev-parse", "refs/devloop/checkpoints/1").strip() == first.commit
    assert ws.run_git("rev-parse", f"{second.commit}^").strip() == first.commit  # a chain of checkpoints
    assert ws.run_git("show", f"{first.ref}:a.py") == "a = 2\n"
    assert "1 of 1 pass" in ws.run_git("log", "-1", "--format=%s", first.ref)
    assert git(ws.root, "for-each-ref", "refs/devloop") == ""
    assert not ws.gitdir.is_relative_to(ws.root)
    assert git(ws.root, "rev-parse", "HEAD") == head
    assert git(ws.root, "for-each-ref", "refs/heads") == heads


def test_restore_reverts_edits_removes_added_and_brings_back_deleted_files(ws: Workspace) -> None:
    (ws.root / "a.py").write_text("a = 2\n")
    cps = Checkpoints(ws)
    cp = cps.save(1, ws.diff())
    (ws.root / "a.py").write_text("a = 99\n")
    (ws.root / "new.py").write_text("new\n")
    (ws.root / "pkg").mkdir()
    (ws.root / "pkg" / "deep.py").write_text("deep\n")
    (ws.root / "b.py").unlink()
    (ws.root / "build").mkdir()
    (ws.root / "build" / "out.bin").write_text("ignored output\n")
    undone = cps.restore(cp)
    assert (ws.root / "a.py").read_text() == "a = 2\n"
    assert not (ws.root / "new.py").exists() and not (ws.root / "pkg" / "deep.py").exists()
    assert (ws.root / "b.py").read_text() == "b = 1\n"
    assert (ws.root / "build" / "out.bin").exists()  # ignored files are not the agent's edits
    assert undone.modified == ["a.py"] and undone.restored == ["b.py"]
    assert sorted(undone.removed) == ["new.py", "pkg/deep.py"]
    assert "reverted: a.py" in undone.describe()
    assert ws.diff() == cp.patch


def test_restore_file_from_the_last_checkpoint_or_the_start(ws: Workspace) -> None:
    cps = Checkpoints(ws)
    (ws.root / "a.py").write_text("broken(\n")
    assert cps.restore_file("a.py") is True  # no checkpoint yet: the starting state
    assert (ws.root / "a.py").read_text() == "a = 1\n"
    (ws.root / "a.py").write_text("a = 5\n")
    cps.save(1, ws.diff())
    (ws.root / "a.py").write_text("broken(\n")
    (ws.root / "extra.py").write_text("x\n")
    assert cps.restore_file("a.py") is True
    assert (ws.root / "a.py").read_text() == "a = 5\n"
    assert cps.restore_file("extra.py") is True and not (ws.root / "extra.py").exists()
    assert cps.restore_file("b.py") is False
