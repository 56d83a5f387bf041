"""The whole agent through a real local HTTP model server: every tool-call format, faults, limits, exits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.demo import demo_issue, demo_script, make_demo_repo
from devloop.models.scripted_server import ScriptedServer
from devloop.session import RunResult, run_agent


@pytest.fixture
def fix(replies: Any) -> dict[str, Any]:
    """The median fix, as one str_replace."""
    return replies.replace(
        "statkit/descriptive.py",
        "    return data[middle]\n",
        "    if len(data) % 2 == 0:\n        return (data[middle - 1] + data[middle]) / 2\n    return data[middle]\n",
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_demo_repo(tmp_path / "statkit")


def snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in repo.rglob("*") if p.is_file()}


def run(
    repo: Path, tmp_path: Path, script: list[dict[str, Any]], **settings: Any
) -> tuple[RunResult, ScriptedServer]:
    with ScriptedServer(script) as server:
        s = load_settings(model="openai/test", base_url=server.url, **settings)
        result = run_agent(repo, demo_issue(), s, tmp_path / "out")
    return result, server


def suite_passes_with(repo: Path, patch: str) -> bool:
    subprocess.run(["git", "apply", "-"], cwd=repo, input=patch.encode(), check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"], cwd=repo, capture_output=True, check=False
    )
    return proc.returncode == 0


@pytest.mark.parametrize("tool_format", ["native", "mistral", "xml", "hermes", "auto"])
def test_each_format_fixes_the_bug_and_leaves_the_user_tree_alone(
    tool_format: str, repo: Path, tmp_path: Path
) -> None:
    before = snapshot(repo)
    result, server = run(repo, tmp_path, demo_script(tool_format), tool_format=tool_format)
    assert result.exit_status == "finished", result.reason
    assert result.steps == 6
    assert snapshot(repo) == before
    assert suite_passes_with(repo, result.patch)
    out = tmp_path / "out"
    assert (out / "patch.diff").read_text() == result.patch
    saved = json.loads((out / "result.json").read_text())
    assert {
        "exit_status",
        "steps",
        "prompt_tokens",
        "completion_tokens",
        "patch_path",
        "duration_s",
    } <= saved.keys()
    assert saved["prompt_tokens"] > 0 and saved["completion_tokens"] > 0
    first = server.requests[0]
    if tool_format in ("native", "auto"):
        assert {t["function"]["name"] for t in first["tools"]} >= {
            "execute_bash",
            "str_replace_editor",
            "finish",
        }
    else:
        assert "tools" not in first
        assert "str_replace_editor" in first["messages"][0]["content"]  # tools rendered into the prompt
    assert (first.get("stop") == ["</function"]) == (tool_format == "xml")
    assert (first.get("skip_special_tokens") is False) == (tool_format == "mistral")
    assert first["temperature"] == 0.0


def test_trajectory_records_every_step_with_the_patch_so_far(repo: Path, tmp_path: Path) -> None:
    run(repo, tmp_path, demo_script("native"))
    events = [json.loads(line) for line in (tmp_path / "out" / "trajectory.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["start"] + ["step"] * 6 + ["end"]
    steps = events[1:-1]
    assert [bool(s["patch"]) for s in steps] == [False, False, False, True, True, True]  # edited at step 4
    assert all(s["usage"]["prompt_tokens"] > 0 and "model_s" in s["timings"] for s in steps)
    assert steps[3]["calls"][0]["name"] == "str_replace_editor"


def test_format_errors_are_explained_to_the_model_then_end_the_run(
    repo: Path, tmp_path: Path, fix: dict[str, Any]
) -> None:
    chatter = {"role": "assistant", "content": "I think the bug is in median."}
    result, server = run(repo, tmp_path, [fix, chatter, chatter, chatter])
    assert result.exit_status == "format_errors"
    assert "median" in result.patch  # the edit before the errors is kept
    # the request after a bad reply tells the model what was wrong
    last = server.requests[2]["messages"][-1]
    assert last["role"] == "user" and "tool" in last["content"].lower()


def test_unknown_tool_and_bad_arguments_count_as_format_errors(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    bad_tool = replies.call("run_shell", 1)
    bad_args = replies.call("execute_bash", 2, cmd="ls")
    result, server = run(
        repo, tmp_path, [bad_tool, bad_args, replies.bash("true", 3), bad_tool, bad_tool, bad_tool]
    )
    assert result.exit_status == "format_errors"
    assert result.steps == 6  # the valid call in between reset the count
    answer = server.requests[1]["messages"][-1]
    assert (
        answer["role"] == "tool" and "run_shell" in answer["content"] and "execute_bash" in answer["content"]
    )


def test_max_iterations(repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]) -> None:
    result, server = run(
        repo, tmp_path, [fix] + [replies.bash("true", i) for i in range(10)], max_iterations=3
    )
    assert (result.exit_status, result.steps, len(server.requests)) == ("max_iterations", 3, 3)
    assert "median" in result.patch


def test_token_limit(repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]) -> None:
    result, _ = run(repo, tmp_path, [fix] + [replies.bash("true", i) for i in range(10)], max_tokens_total=1)
    assert result.exit_status == "token_limit" and result.steps == 1
    assert "median" in result.patch


def test_time_limit(repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]) -> None:
    result, _ = run(
        repo, tmp_path, [fix, replies.bash("sleep 1.2", 1), replies.bash("true", 2)], time_limit=1.0
    )
    assert result.exit_status == "time_limit" and result.steps == 2
    assert "median" in result.patch


def test_model_error_after_retries_saves_the_patch(repo: Path, tmp_path: Path, fix: dict[str, Any]) -> None:
    script = [fix] + [{"fault": {"status": 503}}] * 3
    result, server = run(repo, tmp_path, script, max_retries=1)
    assert result.exit_status == "model_error"
    assert "503" in result.reason and "\n" not in result.reason
    assert "median" in (tmp_path / "out" / "patch.diff").read_text()
    assert len(server.requests) == 3  # one success, then the first try and one retry
    # the step before the failure reached the trajectory with its patch (computed while the model was asked)
    steps = [json.loads(x) for x in (tmp_path / "out" / "trajectory.jsonl").read_text().splitlines()]
    steps = [e for e in steps if e["type"] == "step"]
    assert len(steps) == 1 and "median" in steps[0]["patch"]


def test_transient_fault_is_retried_and_the_run_finishes(repo: Path, tmp_path: Path) -> None:
    script = [{"fault": {"status": 500}}, *demo_script("native")]
    result, _ = run(repo, tmp_path, script)
    assert result.exit_status == "finished"


def test_auth_error_is_not_retried(repo: Path, tmp_path: Path) -> None:
    result, server = run(repo, tmp_path, [{"fault": {"status": 401}}, *demo_script("native")])
    assert result.exit_status == "model_error" and len(server.requests) == 1


@pytest.mark.parametrize("exc, status", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "runtime_error")])
def test_interrupt_and_crash_still_save_the_patch(
    repo: Path, tmp_path: Path, exc: type, status: str, replies: Any, fix: dict[str, Any]
) -> None:
    def boom(info: Any) -> None:
        if info.step == 2:
            raise exc("stop here")

    with ScriptedServer([fix, replies.bash("true", 1), replies.bash("true", 2)]) as server:
        s = load_settings(model="openai/test", base_url=server.url)
        result = run_agent(repo, "fix median", s, tmp_path / "out", on_step=boom)
    assert result.exit_status == status
    assert "median" in (tmp_path / "out" / "patch.diff").read_text()
    assert json.loads((tmp_path / "out" / "result.json").read_text())["exit_status"] == status


def test_scripted_provider_goes_through_http(repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "script.jsonl"
    script.write_text("\n".join(json.dumps(m) for m in demo_script("native")) + "\n")
    s = load_settings(model=f"scripted/{script}")
    result = run_agent(repo, demo_issue(), s, tmp_path / "out")
    assert result.exit_status == "finished" and suite_passes_with(repo, result.patch)


def test_security_risk_argument_from_newer_openhands_schemas_is_tolerated(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    call = replies.call("execute_bash", command="ls", security_risk="LOW")
    result, server = run(repo, tmp_path, [call, *demo_script("native")])
    assert result.exit_status == "finished"
    assert "statkit" in server.requests[1]["messages"][-1]["content"]  # the ls ran


def test_a_reply_cut_off_by_the_token_limit_is_explained(repo: Path, tmp_path: Path) -> None:
    cut = {
        "role": "assistant",
        "content": "<function=execute_bash>\n<parameter=command>ls",
        "finish_reason": "length",
    }
    result, server = run(repo, tmp_path, [cut, *demo_script("native")], tool_format="auto")
    assert result.exit_status == "finished"
    assert "cut off by the completion token limit" in server.requests[1]["messages"][-1]["content"]


def test_time_limit_holds_within_a_long_command(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    started = time.monotonic()
    result, server = run(
        repo, tmp_path, [fix, replies.bash("sleep 60", 1), replies.bash("true", 2)], time_limit=2.0
    )
    assert result.exit_status == "time_limit" and time.monotonic() - started < 15
    assert len(server.requests) == 2  # no model call after the time ran out
    assert "median" in result.patch


def test_time_limit_holds_within_a_slow_model_reply(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    started = time.monotonic()
    finish = replies.finish()
    result, _ = run(
        repo,
        tmp_path,
        [fix, {"fault": {"kind": "timeout", "delay": 40}}, finish],
        time_limit=2.0,
        request_timeout=60,
    )
    assert result.exit_status == "time_limit" and "had not replied" in result.reason
    assert time.monotonic() - started < 15
    assert "median" in result.patch
