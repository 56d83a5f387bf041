"""A whole `run_agent` with the feedback loop, queues, minimisation, the policy and the sandbox switched on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.session import RunResult, run_agent
from devloop.workspace import git

OPS = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"
TESTS = (
    "from calc.ops import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_mul():\n    assert mul(2, 4) == 8\n"
)


@pytest.fixture
def fix(replies: Any) -> dict[str, Any]:
    return replies.replace(
        "calc/ops.py", "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b", 1
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "calcrepo"
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "ops.py").write_text(OPS)
    (root / "tests" / "test_ops.py").write_text(TESTS)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def run(
    repo: Path, tmp_path: Path, script: list[dict[str, Any]], **settings: Any
) -> tuple[RunResult, ScriptedServer]:
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with ScriptedServer(script) as server:
        s = load_settings(model="openai/test", base_url=server.url, **settings)
        result = run_agent(repo, "mul is wrong", s, tmp_path / "out", env=env)
    return result, server


def saved(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "out" / "result.json").read_text())


def test_hook_puts_the_failure_summary_into_the_next_request(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    breaking = replies.replace(
        "calc/ops.py", "return a + b\n\n\ndef", "return a - b\n\n\ndef", 0
    )  # breaks test_add
    result, server = run(repo, tmp_path, [breaking, fix, replies.finish()], hook="pytest")
    assert result.exit_status == "finished"
    after_break = server.requests[1]["messages"][-1]["content"]
    assert "test_add" in after_break and "assert" in after_break
    fields = saved(tmp_path)
    assert fields["events_path"] and Path(fields["events_path"]).is_file()
    kinds = {json.loads(line)["kind"] for line in Path(fields["events_path"]).read_text().splitlines()}
    assert "test_run" in kinds


def test_minimize_drops_a_planted_hunk_and_keeps_the_fix(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    noise = replies.replace(
        "calc/ops.py", "def add(a, b):\n", "def add(a, b):\n    # a planted, irrelevant change\n", 2
    )
    result, _ = run(repo, tmp_path, [fix, noise, replies.finish()], hook="pytest", minimize=True)
    info = saved(tmp_path)["minimize"]
    assert info["size_after"] < info["size_before"] and info["test_runs"] >= 1
    assert info["mode"] == "scratch"  # the trial copy is made, and tested, inside the sandbox
    patch = (tmp_path / "out" / "patch.diff").read_text()
    assert "a * b" in patch and "planted" not in patch


def test_minimize_without_a_hook_is_skipped_not_a_crash(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    result, _ = run(repo, tmp_path, [fix, replies.finish()], minimize=True)
    assert result.exit_status == "finished"
    assert "--hook" in saved(tmp_path)["minimize"]["skipped"]


def test_queues_record_spend_and_outcome(
    repo: Path, tmp_path: Path, replies: Any, fix: dict[str, Any]
) -> None:
    script = [replies.call("execute_bash", 0, command="ls"), fix, replies.finish()]
    result, _ = run(repo, tmp_path, script, hook="pytest", queues="fast:1,deep:3,rescue:2")
    fields = saved(tmp_path)
    names = [q["name"] for q in fields["queues"]]
    assert names == ["fast", "deep", "rescue"]
    assert fields["queues"][0]["spent"] == 1 and fields["queues"][0]["outcome"] != "green"
    assert fields["needs_review"] is False
    assert "a * b" in result.patch


def test_queues_without_a_hook_is_a_usage_error(repo: Path, tmp_path: Path, replies: Any) -> None:
    with pytest.raises(ValueError, match="--queues needs a test hook"):
        run(repo, tmp_path, [replies.finish()], queues="fast:1")


def test_policy_denial_is_an_observation_not_a_crash(repo: Path, tmp_path: Path, replies: Any) -> None:
    result, server = run(
        repo,
        tmp_path,
        [
            replies.call("execute_bash", 0, command="sudo rm -rf /"),
            replies.call("execute_bash", 1, command="git push origin main"),
            replies.finish(),
        ],
    )
    assert result.exit_status == "finished"
    denial = server.requests[1]["messages"][-1]["content"].lower()
    assert "sudo" in denial and ("denied" in denial or "policy" in denial)
    assert "push" in server.requests[2]["messages"][-1]["content"].lower()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_default_sandbox_hides_home_and_keeps_the_workspace_writable(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    marker = Path.home() / f".devloop-escape-{os.getpid()}"
    # through python, so the policy's pattern check does not stop it first: the sandbox must
    write = f"python3 -c \"open('{marker}', 'w').write('x')\"; touch inside.txt && echo ok"
    script = [replies.call("execute_bash", 0, command=write), replies.finish()]
    try:
        result, server = run(repo, tmp_path, script)  # sandbox "auto": bwrap here
        assert result.sandbox == "bwrap"
        assert not marker.exists()
        assert "inside.txt" in result.patch
    finally:
        marker.unlink(missing_ok=True)
