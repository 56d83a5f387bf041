"""The feedback loop inside a real agent run: a scripted model over HTTP, the real Agent, tools and shell."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devloop.agent import Agent, RunLimits, Stop
from devloop.feedback.loop import FeedbackLoop, build_feedback
from devloop.feedback.settings import FeedbackSettings
from devloop.feedback.tokens import count_tokens
from devloop.formats import get_format
from devloop.models import get_model
from devloop.models.scripted_server import ScriptedServer
from devloop.runtime import LocalRuntime
from devloop.tools.base import ToolContext
from devloop.tools.registry import default_toolbox
from devloop.trajectory import Trajectory
from devloop.types import SamplingParams
from devloop.workspace import Workspace, git

OPS = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"
TESTS = (
    "from calc.ops import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_mul():\n    product = mul(2, 4)\n    assert product == 8\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "calcrepo"
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "ops.py").write_text(OPS)
    (root / "calc" / "other.py").write_text("def other():\n    return 1\n")
    (root / "tests" / "test_ops.py").write_text(TESTS)
    (root / "tests" / "test_other.py").write_text(
        "from calc.other import other\n\n\ndef test_other():\n    assert other() == 1\n"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def run_loop(
    repo: Path, tmp_path: Path, script: list[dict[str, Any]], **flags: Any
) -> tuple[Stop, ScriptedServer, FeedbackLoop, Workspace]:
    """Build the run the way session.run_agent does, with the feedback loop's hooks on the Agent."""
    settings = FeedbackSettings(hook="pytest", **flags)
    ws = Workspace.create(repo, parent=tmp_path)
    # Plugin autoload off: the 1 s that this machine's installed pytest plugins add to each run.
    runtime = LocalRuntime(ws.root, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    loop = build_feedback(settings, workspace=ws, runtime=runtime, out_dir=tmp_path / "out")
    assert loop is not None
    with ScriptedServer(script) as server:
        model = loop.instrument(get_model("openai/test", base_url=server.url, max_retries=0))
        toolbox = default_toolbox()
        agent = Agent(
            model=model,
            fmt=get_format("native"),
            toolbox=toolbox,
            ctx=ToolContext(runtime=runtime, root=ws.root),
            params=SamplingParams(),
            limits=RunLimits(max_iterations=len(script)),
            trajectory=Trajectory(tmp_path / "traj.jsonl"),
            patch=ws.diff,
            hooks=loop.hooks,
        )
        try:
            stop = agent.run("system", "fix mul")
        finally:
            runtime.close()
            model.close()
    return stop, server, loop, ws


def feedback_in(request: dict[str, Any]) -> str:
    content = request["messages"][-1]["content"]
    return content[content.index("[test hook]") :] if "[test hook]" in content else ""


@pytest.mark.slow
def test_a_breaking_edit_is_reported_in_the_very_next_request_within_budget(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    script = [
        replies.replace(
            "calc/ops.py", "    return a + b\n\n\ndef mul", "    return a + b  # sum\n\n\ndef mul", 0
        ),
        replies.replace("calc/ops.py", "    return a + b  # sum", "    return a - b", 1),
        replies.call("execute_bash", 2, command="true"),
    ]
    stop, server, loop, _ = run_loop(repo, tmp_path, script, summary_tokens=120)
    loop.close()
    assert stop.status == "max_iterations"
    first = feedback_in(server.requests[1])
    assert first.startswith("[test hook] 0 of 2 pass") or first.startswith("[test hook] 1 of 2 pass")
    second = feedback_in(server.requests[2])
    assert "Newly failing (passed before): tests/test_ops.py::test_add" not in first
    assert "0 of 2 now pass (was 1 of 2)" in second
    assert "Newly failing (passed before): tests/test_ops.py::test_add" in second
    assert "assert -1 == 5" in second  # the assertion message, with pytest's rewriting
    assert count_tokens(second) <= 120
    assert "test_other" not in second  # unrelated tests were not run
    # a step that changed nothing ran no tests and added nothing
    assert loop.hook.test_runs == 2


@pytest.mark.slow
def test_three_no_progress_steps_restore_the_best_checkpoint(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    fixed = OPS.replace("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b")
    script = [
        replies.replace(
            "calc/ops.py", "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b", 0
        ),
        replies.replace(
            "calc/ops.py", "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b", 1
        ),
        replies.call("str_replace_editor", 2, command="create", path="calc/extra.py", file_text="X = 1\n"),
        replies.call(
            "str_replace_editor",
            3,
            command="create",
            path="tests/test_extra.py",
            file_text="def test_broken():\n    assert False\n",
        ),
        replies.call("execute_bash", 4, command="rm calc/other.py"),
        replies.call("execute_bash", 5, command="true"),
    ]
    heads_before = git(repo, "for-each-ref", "refs/heads")
    stop, server, loop, ws = run_loop(repo, tmp_path, script, rollback_threshold=3, metrics_port=0)
    try:
        assert stop.status == "max_iterations"
        # steps 2, 3 and 4 changed files without improving; the rollback happened after step 4
        told = server.requests[4]["messages"][-1]["content"]
        assert "[rollback]" in told and "checkpoint 1 (after step 1)" in told
        assert "calc/ops.py" in told and "calc/extra.py" in told and "tests/test_extra.py" in told
        assert (ws.root / "calc" / "ops.py").read_text() == fixed
        assert not (ws.root / "calc" / "extra.py").exists()
        assert not (ws.root / "tests" / "test_extra.py").exists()
        # step 5 deleted a module after the rollback: the agent's new work, kept, and its tests now fail
        assert loop.hook.last_report is not None
        assert loop.hook.last_report.statuses["tests/test_other.py"] == "ERROR"
        assert not (ws.root / "calc" / "other.py").exists()
        ref = ws.run_git("rev-parse", "refs/devloop/checkpoints/1").strip()  # devloop's private git dir
        assert ws.run_git("show", f"{ref}:calc/ops.py") == fixed
        assert git(ws.root, "for-each-ref", "refs/devloop") == ""  # the model's repository holds none
        assert git(ws.root, "rev-parse", "HEAD").strip() == git(repo, "rev-parse", "HEAD").strip()
        assert git(ws.root, "for-each-ref", "refs/heads") == heads_before  # no branch moved
        assert git(repo, "for-each-ref", "refs/devloop") == ""  # the user's repository is untouched
        assert git(repo, "status", "--porcelain") == ""
        fields = loop.result_fields()
        assert fields["rollbacks"] == 1 and fields["checkpoints"] == 1
        scraped = (
            urllib.request.urlopen(f"http://127.0.0.1:{loop.metrics.port}/metrics", timeout=5).read().decode()
        )
        assert "devloop_rollbacks_total 1.0" in scraped
        assert "devloop_checkpoints_total 1.0" in scraped
        assert "devloop_steps_total 6.0" in scraped
        assert 'devloop_test_runs_total{status="failing"}' in scraped
        assert "devloop_model_latency_seconds_count 6.0" in scraped
        assert 'devloop_tokens_total{kind="prompt"}' in scraped
    finally:
        loop.close()
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    for event in events:
        assert {
            "ts",
            "retry",
            "queue",
            "patch_sha",
            "test",
            "status",
            "trace_bytes",
            "step",
            "timings",
        } <= event.keys()
    kinds = [e["kind"] for e in events if e["kind"] != "test"]
    assert kinds[:2] == ["test_run", "checkpoint"]
    assert "rollback" in kinds
    rollback = next(e for e in events if e["kind"] == "rollback")
    assert (
        rollback["step"] == 4 and rollback["retry"] == 1 and rollback["ref"] == "refs/devloop/checkpoints/1"
    )
    runs = [e for e in events if e["kind"] == "test_run"]
    assert all("overhead_s" in e["timings"] and "test_s" in e["timings"] for e in runs)
    assert any(e["trace_bytes"] > 0 for e in runs)


def test_the_user_branch_is_never_touched_by_checkpoints(repo: Path, tmp_path: Path, replies: Any) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    script = [
        replies.replace(
            "calc/ops.py", "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b", 0
        )
    ]
    _, _, loop, ws = run_loop(repo, tmp_path, script)
    loop.close()
    assert loop.hook.last_report is not None and loop.hook.last_report.green
    assert git(ws.root, "rev-parse", "HEAD") == head
    assert ws.run_git("for-each-ref", "--format=%(refname)", "refs/devloop").split() == [
        "refs/devloop/checkpoints/1"
    ]
    assert git(ws.root, "for-each-ref", "refs/devloop") == ""


def test_a_same_size_re_edit_in_the_same_second_is_tested_as_it_is(
    repo: Path, tmp_path: Path, replies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the tests' runs write .pyc files
    # Both edits keep the file's size and (touch) its mtime second: Python would take the first edit's
    # .pyc, which the first test run wrote, for the second's code unless the hook drops it.
    same_second = "touch -d @1600000000 calc/ops.py"
    script = [
        replies.call("execute_bash", 0, command=f"sed -i '6s/a + b/a - b/' calc/ops.py && {same_second}"),
        replies.call("execute_bash", 1, command=f"sed -i '6s/a - b/a * b/' calc/ops.py && {same_second}"),
        replies.call("execute_bash", 2, command="true"),
    ]
    stop, server, loop, _ = run_loop(repo, tmp_path, script)
    loop.close()
    assert stop.status == "max_iterations"
    assert feedback_in(server.requests[1]).startswith("[test hook] 1 of 2 pass")  # a - b: mul fails
    assert feedback_in(server.requests[2]).startswith("[test hook] 2 of 2 now pass"), feedback_in(
        server.requests[2]
    )
