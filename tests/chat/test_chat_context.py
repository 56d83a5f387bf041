"""What a turn carries besides the user's words: AGENTS.md, the repository's state, @-mentioned files and
images; and the completion of `@path`."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from devloop.chat.checkpoint import Checkpoints
from devloop.chat.completion import path_candidates
from devloop.chat.context import attach, git_state, images_enabled, instructions, mentions
from devloop.workspace import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "init", "-q", "-b", "trunk")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "add a")
    return repo


def test_agents_md_from_the_user_then_the_root_down_to_the_current_directory(
    repo: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user-AGENTS.md"
    user.write_text("user: be brief\n")
    (repo / "AGENTS.md").write_text("root: run pytest\n")
    (repo / "pkg" / "AGENTS.md").write_text("pkg: no prints\n")
    (tmp_path / "elsewhere.md").write_text("SECRET\n")
    (repo / "pkg" / "sub" / "AGENTS.md").symlink_to(tmp_path / "elsewhere.md")  # out of the tree: skipped
    found = instructions(repo, repo / "pkg" / "sub", user_file=user)
    assert [w for w, _ in found.files] == [str(user), "AGENTS.md", "pkg/AGENTS.md"]
    text = found.text()
    assert text.index("be brief") < text.index("run pytest") < text.index("no prints")  # closest last: wins
    assert "closer file wins" in text and "SECRET" not in text
    # started outside the repository: its root file only
    assert [w for w, _ in instructions(repo, tmp_path, user_file=tmp_path / "none").files] == ["AGENTS.md"]


def test_git_state_names_the_branch_changed_files_and_recent_commits(repo: Path) -> None:
    (repo / "a.py").write_text("x = 2\n")
    (repo / "pkg" / "new.py").write_text("")
    state = git_state(repo, Checkpoints(repo, repo.parent / "private.git", "s").gitdir)
    assert state.branch == "trunk" and state.commits[0].endswith(" add a")
    assert state.dirty == ["M a.py", "A pkg/new.py"]
    assert "branch trunk" in state.text() and "add a" in state.text()


def test_git_state_runs_no_filter_or_fsmonitor_the_repository_names(repo: Path, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    with (repo / ".git" / "config").open("a") as f:
        f.write(
            f'[filter "x"]\n\tclean = touch {pwned}-filter; cat\n[core]\n\tfsmonitor = touch {pwned}-fsm\n'
        )
    (repo / ".gitattributes").write_text("* filter=x\n")
    (repo / "a.py").write_text("x = 3\n")
    assert git_state(repo, Checkpoints(repo, tmp_path / "private.git", "s").gitdir).dirty == [
        "A .gitattributes",
        "M a.py",
    ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []


def test_mentions_attach_files_and_images_but_never_leave_the_tree(repo: Path, tmp_path: Path) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    (repo / "shot.png").write_bytes(png)
    (tmp_path / "secret.txt").write_text("SECRET\n")
    (repo / "link.txt").symlink_to(tmp_path / "secret.txt")
    (repo / "pkg" / "linked").symlink_to(tmp_path)
    prompt = "fix @a.py, see @shot.png; not @link.txt, @pkg/linked/secret.txt, @../secret.txt or @missing.py."
    assert mentions(prompt) == ["a.py", "shot.png", "link.txt", "pkg/linked/secret.txt", "../secret.txt",
                                "missing.py"]  # fmt: skip
    got = attach(repo, prompt)
    assert got.names == ["a.py", "shot.png"]
    assert '<file path="a.py"' in got.text and "x = 1" in got.text and "SECRET" not in got.text
    assert got.images == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                                     + base64.b64encode(png).decode()}}]  # fmt: skip
    problems = "\n".join(got.problems)
    assert "@link.txt: leads out of the repository" in problems
    assert "@pkg/linked/secret.txt: leads out of the repository" in problems
    assert "@../secret.txt: outside the repository" in problems and "@missing.py:" in problems
    off = attach(repo, "see @shot.png", images=False)
    assert off.images == [] and "does not take images (images = false" in off.problems[0]


def test_images_false_in_the_chat_config_turns_them_off_for_that_model_only(tmp_path: Path) -> None:
    config = tmp_path / "chat.toml"
    config.write_text('[models."openai/text-only"]\nimages = false\n')
    assert not images_enabled("openai/text-only", config) and images_enabled("openai/devstral", config)
    assert images_enabled("openai/text-only", tmp_path / "missing.toml")


def test_path_completion_lists_the_tree_and_not_its_git_dir_or_beyond(repo: Path, tmp_path: Path) -> None:
    (repo / "pkg" / "mod.py").write_text("")
    assert path_candidates(repo, "pk") == ["pkg/"]
    assert path_candidates(repo, "pkg/m") == ["pkg/mod.py"]
    assert ".git" not in " ".join(path_candidates(repo, ".")) and path_candidates(repo, "../") == []
    (repo / "out").symlink_to(tmp_path)
    assert path_candidates(repo, "out/") == []  # a link out of the tree is not listed through
