"""`/commit [MESSAGE]` in the line loop: the user's branch moves only when asked, and nothing the model
wrote into the repository's .git (hooks, filters, a signing program) runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.chat.checkpoint import Checkpoints
from devloop.chat.commit import commit
from devloop.cli import app
from devloop.models.scripted_server import ScriptedServer
from devloop.workspace import WorkspaceError, git


def private(repo: Path, tmp_path: Path) -> Path:
    return Checkpoints(repo, tmp_path / "private.git", "s").gitdir


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEVLOOP_CHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.org")
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init")
    return repo


def test_commit_in_the_loop_moves_the_branch_only_when_asked(repo: Path, replies) -> None:
    before = git(repo, "rev-parse", "HEAD").strip()
    drafted = {"role": "assistant", "content": "Set x to 2\n\nThe user asked for it."}
    script = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("two"), drafted]
    with ScriptedServer(script) as server:
        argv = ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url", server.url,
                "--sandbox", "none", "--auto-edit"]  # fmt: skip
        (repo / "new.txt").write_text("new\n")
        (repo / "debug.log").write_text("ignored\n")
        res = CliRunner().invoke(app, argv, input="make 2\n/commit\ny\n/commit set x to 2\n/exit\n")
        drafting = server.requests[-1]["messages"]
    assert res.exit_code == 0, res.output
    # the bare /commit: a message drafted by the model from the diff, shown, and approved
    assert "+x = 2" in drafting[-1]["content"] and "- make 2" in drafting[-1]["content"]
    assert "commit message (drafted by the model):\nSet x to 2" in res.output
    assert "nothing to commit" not in res.output.split("/commit")[0]
    head = git(repo, "rev-parse", "HEAD").strip()
    # the bare /commit committed (the drafted message), the second found nothing new
    assert head != before and git(repo, "rev-parse", "HEAD~1").strip() == before
    assert (
        "/commit: nothing to commit on main" in res.output and f"committed {head[:12]} on main" in res.output
    )
    assert git(repo, "log", "-1", "--format=%s|%an|%ae").strip() == "Set x to 2|Ada User|ada@example.org"
    assert git(repo, "show", "HEAD:a.py") == "x = 2\n" and git(repo, "show", "HEAD:new.txt") == "new\n"
    assert "debug.log" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")
    assert git(repo, "status", "--porcelain") == ""  # the index follows the commit


def test_nothing_the_model_wrote_into_dot_git_runs(repo: Path, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "userhome"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Home User\n\temail = home@example.org\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    monkeypatch.delenv("GIT_AUTHOR_EMAIL")
    pwned = tmp_path / "pwned"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {pwned}-hook\n")
    hook.chmod(0o755)
    (repo / ".git" / "hooks" / "reference-transaction").write_bytes(
        hook.read_bytes().replace(b"-hook", b"-ref")
    )
    (repo / ".git" / "hooks" / "reference-transaction").chmod(0o755)
    with (repo / ".git" / "config").open("a") as f:
        f.write(f'[filter "x"]\n\tclean = touch {pwned}-filter; cat\n[commit]\n\tgpgSign = true\n'
                f'[gpg]\n\tprogram = touch {pwned}-gpg\n[core]\n\tfsmonitor = touch {pwned}-fsm\n'
                "[user]\n\tname = Mallory\n")  # fmt: skip
    (repo / ".gitattributes").write_text("* filter=x\n")
    (repo / "a.py").write_text("x = 3\n")
    said = commit(repo, private(repo, tmp_path), "x is 3")
    assert said.startswith("committed ") and said.endswith("on main: x is 3")
    assert git(repo, "show", "HEAD:a.py") == "x = 3\n"
    assert git(repo, "log", "-1", "--format=%an|%ae|%cn").strip() == "Home User|home@example.org|Home User"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []


def test_a_detached_head_or_a_dot_git_symlink_is_one_line(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(WorkspaceError, match="^/commit: HEAD is not on a branch; check one out first$"):
        commit(repo, private(repo, tmp_path), "m")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / ".git").symlink_to(repo / ".git")
    with pytest.raises(WorkspaceError, match="is not a git directory"):
        commit(other, private(repo, tmp_path), "m")
