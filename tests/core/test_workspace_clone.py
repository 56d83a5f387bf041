"""A workspace's clone is what `git clone --shared` and `git checkout --detach` give, without running them.

devloop writes the clone's git directory itself (one git process checks the commit out instead of
three), so each test compares what the model's git shows in the workspace with a real clone's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devloop.workspace import Workspace
from devloop.workspace import clone as clone_module

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# What the model's git is asked in a workspace: each answer must be the real clone's.
VIEWS = (
    ["status"],
    ["branch", "-a", "-vv"],
    ["tag", "-n"],
    ["remote", "-v"],
    ["log", "--oneline", "--all", "--graph", "--decorate"],
    ["describe", "--tags", "--always"],
    ["rev-parse", "HEAD", "HEAD^{tree}", "@{upstream}"],
    ["config", "--get-regexp", "^(remote|branch)\\."],
    ["show", "--stat", "HEAD"],
    ["ls-files", "-s"],
)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {cwd}: {done.stderr}")
    return done.stdout + (done.stderr if not check else "")


def history(repo: Path, *init: str) -> Path:
    """A repository with two branches, a lightweight and an annotated tag, HEAD on `main`."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", *init)
    for k in range(3):
        (repo / "m.py").write_text(f"x = {k}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"c{k}")
    git(repo, "tag", "v0")
    git(repo, "tag", "-a", "v1", "-m", "release one")
    git(repo, "checkout", "-qb", "topic/one")
    (repo / "t.py").write_text("t = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "topic")
    git(repo, "checkout", "-q", "main")
    return repo


def real_clone(repo: Path, dest: Path) -> Path:
    git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest))
    git(dest, "checkout", "-q", "--detach", git(repo, "rev-parse", "HEAD").strip())
    return dest


def views(root: Path, origin: Path) -> list[str]:
    return [git(root, *args, check=False).replace(str(origin), "ORIGIN") for args in VIEWS]


def assert_like_a_clone(repo: Path, tmp_path: Path) -> Workspace:
    ws = Workspace.create(repo, parent=tmp_path)
    assert ws.kind == "clone"
    reference = real_clone(repo, tmp_path / "reference" / repo.name)
    assert views(ws.root, repo) == views(reference, repo)
    assert (ws.root / ".git" / "info" / "exclude").is_file()  # where a model may add its ignores
    return ws


def test_a_clone_shows_what_a_real_clone_shows(tmp_path: Path) -> None:
    ws = assert_like_a_clone(history(tmp_path / "proj"), tmp_path)
    (ws.root / "m.py").write_text("x = 9\n")
    assert "+x = 9" in ws.diff()
    ws.cleanup()


def test_a_detached_head_and_a_path_with_quotes(tmp_path: Path) -> None:
    repo = history(tmp_path / 'we"ird \\ name')
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert_like_a_clone(repo, tmp_path).cleanup()


def test_a_shallow_repository_keeps_its_grafts(tmp_path: Path) -> None:
    full = history(tmp_path / "full")
    repo = tmp_path / "proj"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{full}", str(repo))
    ws = assert_like_a_clone(repo, tmp_path)
    assert len(git(ws.root, "log", "--oneline").splitlines()) == 2
    ws.cleanup()


def test_a_linked_worktree_is_cloned_from_the_main_object_store(tmp_path: Path) -> None:
    main = history(tmp_path / "main")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", str(linked), "topic/one")
    ws = assert_like_a_clone(linked, tmp_path)
    assert ws.read_only_paths == [main / ".git" / "objects"]
    assert (ws.root / "t.py").read_text() == "t = 1\n"
    ws.cleanup()


def test_what_cannot_be_written_is_cloned_by_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise OSError("no room")

    monkeypatch.setattr(clone_module, "_write_gitdir", refuse)
    repo = history(tmp_path / "proj")
    (repo / "m.py").write_text("x = 5\n")  # uncommitted: replayed on top either way
    ws = Workspace.create(repo, parent=tmp_path)
    assert ws.kind == "clone" and (ws.root / "m.py").read_text() == "x = 5\n"
    assert "origin/main" in git(ws.root, "branch", "-a")
    ws.cleanup()
