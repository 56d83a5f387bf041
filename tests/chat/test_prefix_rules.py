"""Command-prefix approvals decided on the shell syntax: a rule is never stretched over more than one
plain command."""

from __future__ import annotations

import pytest

from devloop.policy.prefix import approved_by_prefix

RULES = ["echo", "cat", "git status", "ls"]


@pytest.mark.parametrize(
    "command, rule",
    [("echo hello world", "echo"), ("cat a.py", "cat"), ("git status -s", "git status"), ("ls", "ls"),
     ("echo 'a > b; c'", "echo")],
)  # fmt: skip
def test_a_plain_command_under_a_rule_is_approved(command: str, rule: str) -> None:
    assert approved_by_prefix(command, RULES) == rule


@pytest.mark.parametrize(
    "command",
    ["echo x > file", "cat a; rm -rf b", "cat a && rm -rf b", "ls | sh", "echo $(rm -rf x)",
     "echo `rm x`", "cat <(rm x)", "PATH=. ls", "git stash", "gitstatus", "echo $HOME", "cat a >> b",
     "if true; then rm x; fi", "echo 'unterminated", "(ls)", "cat a\nrm b", "ls & rm b", "cat ~/.ssh/id"],
)  # fmt: skip
def test_anything_more_than_the_rule_is_not_approved(command: str) -> None:
    assert approved_by_prefix(command, RULES) is None


def test_a_rule_that_is_not_a_plain_command_approves_nothing() -> None:
    assert approved_by_prefix("echo hi", ["echo > x", "echo; rm"]) is None
