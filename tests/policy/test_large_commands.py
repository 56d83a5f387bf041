"""Big and pathological commands: over the size cap they are refused before any rule reads them, and
under it the check takes time linear in the command's length."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devloop.policy import GatedToolbox, Policy, bash_write_targets, load_policy
from devloop.tools.base import ToolContext
from devloop.tools.bash import MAX_COMMAND_CHARS, BashArgs, BashTool
from devloop.tools.registry import default_toolbox
from devloop.types import CommandResult, ToolCall

ROOT = Path("/work/repo")


def bash(command: str) -> ToolCall:
    return ToolCall("execute_bash", {"command": command})


@dataclass
class RecordingRuntime:
    """Records commands instead of running them."""

    root: Path = ROOT
    commands: list[str] = field(default_factory=list)

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        return CommandResult(output="ran\n", exit_code=0, timed_out=False, duration_s=0.0)

    def close(self) -> None:
        pass


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(tmp_path, user_file=tmp_path / "no-user.toml")


def test_a_5_mb_command_is_refused_before_any_rule_reads_it(policy, monkeypatch) -> None:
    def no_rules(*args: object, **kwargs: object) -> None:
        raise AssertionError("a rule was evaluated on an oversized command")

    monkeypatch.setattr(Policy, "first_match", no_rules)
    runtime = RecordingRuntime()
    gate = GatedToolbox(default_toolbox(), policy, ROOT)
    obs = gate.execute(bash("echo " + "x" * 5_000_000), ToolContext(runtime=runtime, root=ROOT))  # type: ignore[arg-type]
    assert obs.is_error and runtime.commands == []
    assert obs.text.startswith("Not run: the command is 5,000,005 characters long")
    assert "str_replace_editor" in obs.text and "\n" not in obs.text
    assert obs.meta["policy"]["source"] == "built-in limit"


def test_the_cap_is_inclusive(policy) -> None:
    at_cap = "#" * MAX_COMMAND_CHARS  # a comment: no rule matches it
    assert policy.check(bash(at_cap), ROOT, interactive=False).action == "allow"
    assert policy.check(bash(at_cap + "#"), ROOT, interactive=False).action == "deny"


def test_the_bash_tool_refuses_an_oversized_command_without_a_policy() -> None:
    runtime = RecordingRuntime()
    ctx = ToolContext(runtime=runtime, root=ROOT)  # type: ignore[arg-type]
    obs = BashTool().run(BashArgs(command="x" * (MAX_COMMAND_CHARS + 1)), ctx)
    assert obs.is_error and runtime.commands == [] and obs.meta == {"refused": "command_too_long"}
    assert "over the limit of 1,048,576" in obs.text
    assert BashTool().run(BashArgs(command="echo ok"), ctx).text.startswith("ran")


# Shapes that were quadratic (or worse) in the old check: a rule's regex scanning far from each of many
# start positions, shlex copying a growing token per character, a list sliced once per VAR=value.
SHAPES = {
    "separators": lambda n: ";" * n,
    "newlines": lambda n: "\n" * n,
    "downloads": lambda n: "curl " * (n // 5),
    "one quoted word": lambda n: 'echo "' + "x" * n + '"',
    "assignments": lambda n: "A=b " * (n // 4) + "ls",
    "heredoc": lambda n: "cat > f.py <<'EOF'\n" + "print('x > /etc/passwd')\n" * (n // 26) + "EOF\n",
    "unclosed quote": lambda n: "a" * n + " 'x",
}


def _check_times(policy: Policy, commands: list[str]) -> list[float]:
    """CPU seconds of the check for each command: the best of three rounds, taken in turn, so that
    other processes on the machine (CPU time excludes them) and drift weigh on all sizes alike."""
    best = [float("inf")] * len(commands)
    for _ in range(3):
        for i, command in enumerate(commands):
            t0 = time.process_time()
            policy.first_match(bash(command), ROOT, interactive=False)
            best[i] = min(best[i], time.process_time() - t0)
    return best


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_check_is_linear_in_the_command_length(policy, shape) -> None:
    small, large = _check_times(policy, [SHAPES[shape](50_000), SHAPES[shape](200_000)])
    ratio = large / max(small, 1e-3)
    # Linear is about 4; quadratic is 16 (the old check: 13 to 18 on the first shapes at these sizes).
    assert ratio < 10, f"{shape}: 4x the length took {ratio:.1f}x the time ({small:.3f} s, {large:.3f} s)"


@pytest.mark.timeout(30)
def test_git_options_do_not_backtrack_exponentially(policy) -> None:
    # `git -a -a ... x` had 2^n ways to split options from their arguments: 60 options hung the check.
    assert policy.check(bash("git" + " -a" * 200 + " x"), ROOT, interactive=False).action == "allow"
    assert policy.check(bash("git -c a=b --no-pager push"), ROOT, interactive=False).action == "deny"
    assert policy.check(bash("/usr/bin/git -C repo push origin"), ROOT, interactive=False).action == "deny"


def test_a_command_on_a_later_line_is_still_checked(policy) -> None:
    assert policy.check(bash("ls\nsudo rm -rf /"), ROOT, interactive=False).action == "deny"
    assert policy.check(bash("cd x\n  git push"), ROOT, interactive=False).action == "deny"


def test_here_document_bodies_are_data_not_commands() -> None:
    command = "cat > notes.txt <<'EOF'\necho x > /etc/passwd\nEOF\ntouch /root/after"
    assert bash_write_targets(command) == ["notes.txt", "/root/after"]
    assert bash_write_targets("cat <<-END > out\n\tsudo > /etc/a\n\tEND\n") == ["out"]


def test_unicode_spaces_do_not_hide_a_redirect() -> None:
    # To bash these are word characters; the old tokenizer split on them, the first new one gave up.
    assert bash_write_targets("echo x > /etc/passwd \u2028") == ["/etc/passwd"]
    assert bash_write_targets('echo "a > b" \'c > d\' > "/etc/q r"') == ["/etc/q r"]
