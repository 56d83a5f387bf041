"""execute_bash: schema, argument handling, observation formatting and capping."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from devloop.runtime.local import LocalRuntime
from devloop.tools.base import ToolContext
from devloop.tools.bash import BashArgs, BashTool, cap_output, format_result
from devloop.types import CommandResult


@dataclass
class FakeRuntime:
    """Returns a canned result and records what it was asked to run."""

    result: CommandResult
    root: Path = Path("/work")
    calls: list[tuple[str, float]] = field(default_factory=list)

    def run(self, command: str, timeout: float) -> CommandResult:
        self.calls.append((command, timeout))
        return self.result

    def close(self) -> None:
        pass


def ctx_for(result: CommandResult, **kw: object) -> tuple[ToolContext, FakeRuntime]:
    runtime = FakeRuntime(result)
    return ToolContext(runtime=runtime, root=runtime.root, **kw), runtime  # type: ignore[arg-type]


def test_spec_matches_openhands_names_and_is_plain_json_schema() -> None:
    spec = BashTool().spec()
    assert spec.name == "execute_bash" == BashTool.name
    assert "persistent shell" in spec.description
    params = spec.parameters
    assert params["type"] == "object" and params["required"] == ["command"]
    assert params["properties"]["command"]["type"] == "string"
    assert params["properties"]["timeout"]["type"] == "integer"
    assert "anyOf" not in str(params) and "title" not in params
    assert spec.openai()["function"]["name"] == "execute_bash"


def test_args_validation() -> None:
    assert BashArgs.model_validate({"command": "ls", "timeout": "30"}).timeout == 30
    assert BashArgs.model_validate({"command": "ls"}).timeout is None
    with pytest.raises(ValidationError):
        BashArgs.model_validate({"command": "ls", "timeout": 0})
    with pytest.raises(ValidationError):
        BashArgs.model_validate({"timeout": 5})


def test_success_observation_and_meta() -> None:
    result = CommandResult(
        output="hello\n", exit_code=0, duration_s=0.01234, output_path="/s/out-1.log", output_bytes=6
    )
    ctx, runtime = ctx_for(result, command_timeout=77)
    obs = BashTool().run(BashArgs(command="echo hello"), ctx)
    assert obs.text == "hello\n[exit code: 0]"
    assert not obs.is_error and not obs.finished
    assert runtime.calls == [("echo hello", 77)]
    assert obs.meta == {
        "exit_code": 0,
        "timed_out": False,
        "duration_s": 0.012,
        "output_path": "/s/out-1.log",
        "output_bytes": 6,
    }


def test_explicit_timeout_and_ceiling() -> None:
    ctx, runtime = ctx_for(CommandResult(output="", exit_code=0))
    BashTool().run(BashArgs(command="make", timeout=900), ctx)
    ctx.extra["max_command_timeout"] = 300
    BashTool().run(BashArgs(command="make", timeout=900), ctx)
    assert runtime.calls == [("make", 900.0), ("make", 300.0)]


@pytest.mark.parametrize("command", ["", "   \n\t"])
def test_empty_command_is_an_error(command: str) -> None:
    ctx, runtime = ctx_for(CommandResult(output="", exit_code=0))
    obs = BashTool().run(BashArgs(command=command), ctx)
    assert obs.is_error and "non-empty" in obs.text
    assert runtime.calls == []


def test_status_lines() -> None:
    timed_out = CommandResult(output="partial\n", exit_code=None, timed_out=True, note="all killed")
    assert format_result(timed_out, cap=100, timeout=120) == (
        "partial\n[command timed out after 120 s and was killed; partial output above]\n[note: all killed]"
    )
    silent = CommandResult(output="", exit_code=None, timed_out=True)
    assert format_result(silent, cap=100, timeout=2.5).endswith(
        "after 2.5 s and was killed; it printed nothing]"
    )
    stopped = CommandResult(output="y\n", exit_code=None, note="output passed 5 bytes")
    assert "[command was stopped before it finished; partial output above]" in format_result(
        stopped, cap=100, timeout=1
    )
    assert format_result(CommandResult(output="", exit_code=3), cap=100, timeout=1) == "[exit code: 3]"


def test_cap_keeps_head_and_tail_with_character_count() -> None:
    text = "".join(f"line {i:04d}\n" for i in range(1000))  # 10 chars per line, 10,000 in all
    result = CommandResult(output=text, exit_code=0, output_path="/s/out-9.log", output_bytes=len(text))
    capped = cap_output(result, 1000)
    head, marker, tail = capped.partition("\n[... ")
    assert head.startswith("line 0000\n") and tail.endswith("line 0999\n")
    assert head == text[:500] and capped.endswith(" ...]\n" + text[-500:])
    assert "[... 9,000 characters elided; full output in /s/out-9.log ...]" in capped
    assert len(capped) < 1100


def test_cap_cuts_on_line_boundaries_when_cheap() -> None:
    text = "".join(f"{i:07d}\n" for i in range(100))  # 8 chars per line
    capped = cap_output(CommandResult(output=text, exit_code=0, output_bytes=len(text)), 100)
    head, _, rest = capped.partition("\n[... ")
    tail = rest.partition(" ...]\n")[2]
    assert head.endswith("\n") and all(len(line) == 7 for line in head.splitlines())
    assert all(len(line) == 7 for line in tail.splitlines())
    assert len(head) <= 50 and len(tail) <= 50


def test_cap_counts_bytes_when_the_runtime_already_cut_the_middle() -> None:
    output = "a" * 3000 + "\n[... 1,000,000 bytes elided; full output in /s/o.log ...]\n" + "z" * 3000
    result = CommandResult(output=output, exit_code=0, output_path="/s/o.log", output_bytes=1_006_000)
    capped = cap_output(result, 1000)
    assert capped.startswith("a" * 500) and capped.endswith("z" * 500)
    assert "[... 1,005,000 bytes elided; full output in /s/o.log ...]" in capped


def test_short_output_is_untouched() -> None:
    result = CommandResult(output="x" * 50, exit_code=0)
    assert cap_output(result, 50) == "x" * 50


def test_with_a_real_shell(tmp_path: Path) -> None:
    with LocalRuntime(tmp_path) as runtime:
        ctx = ToolContext(runtime=runtime, root=tmp_path, output_cap=200)
        tool = BashTool()
        obs = tool.run(BashArgs(command="seq 1 1000; echo err >&2; exit 4"), ctx)
        assert obs.text.startswith("1\n2\n") and "err\n[exit code: 4]" in obs.text
        assert "characters elided; full output in" in obs.text
        assert "[note: the shell exited (status 4)" in obs.text
        assert obs.meta["exit_code"] == 4
        assert Path(obs.meta["output_path"]).read_text().startswith("1\n2\n")
        obs = tool.run(BashArgs(command="sleep 30", timeout=1), ctx)
        assert (
            "Killed" in obs.text
            and "[command timed out after 1 s and was killed; partial output above]" in obs.text
        )
        assert obs.meta["timed_out"] is True
