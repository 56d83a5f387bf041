"""Project approvals in .devloop/policy.toml: written, read back, and never taken from the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.chat.approvals import Approvals, load, policy_file, save
from devloop.types import ToolCall


def bash(command: str) -> ToolCall:
    return ToolCall("execute_bash", {"command": command})


def test_saved_approvals_are_read_back_and_answer_by_prefix(tmp_path: Path) -> None:
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    a = Approvals(tools={"str_replace_editor": "always", "think": "never"})
    a.add_command("git status")
    save(a, repo, store)
    back = load(repo, store)
    assert back.commands == ["git status"] and back.tools == a.tools and not back.warning
    assert back.answer(bash("git status -s")) and not back.answer(bash("git status; rm -rf /"))
    assert back.answer(ToolCall("str_replace_editor", {})) and not back.answer(ToolCall("think", {}))


def test_a_policy_file_the_model_rewrote_is_ignored(tmp_path: Path) -> None:
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    save(Approvals(commands=["ls"]), repo, store)
    policy_file(repo).write_text('[chat]\ncommands = ["rm"]\n[chat.tools]\nexecute_bash = "always"\n')
    back = load(repo, store)
    assert back.commands == [] and back.tools == {} and "not written by devloop chat" in back.warning
    assert not back.answer(bash("rm -rf x"))


def test_a_rule_that_is_not_a_plain_command_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain command"):
        Approvals().add_command("echo; rm")


def test_project_approvals_are_not_written_through_a_devloop_link(tmp_path: Path) -> None:
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    elsewhere.mkdir()
    (repo / ".devloop").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="is a symbolic link"):
        save(Approvals(commands=["ls"]), repo, tmp_path / "store")
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "store").exists()
