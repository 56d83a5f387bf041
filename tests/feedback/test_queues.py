"""Fast / Deep / Rescue queues over a real run: the real Agent, shell, tests and checkpoints, with the queue
policy as a hook on the agent's loop and a model in the process (tests/core runs them over HTTP)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from devloop.agent import Agent, RunLimits, Stop
from devloop.feedback.base import TestReport as Report
from devloop.feedback.loop import FeedbackLoop, build_feedback, check_feedback
from devloop.feedback.queues import QueueError, QueuePolicy, QueueSpec, parse_queues
from devloop.feedback.settings import FeedbackSettings
from devloop.formats import get_format
from devloop.runtime import LocalRuntime
from devloop.tools.base import ToolContext
from devloop.tools.registry import default_toolbox
from devloop.trajectory import Trajectory
from devloop.types import SamplingParams
from devloop.workspace import Workspace, git

OPS = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"
TESTS = (
    "from calc.ops import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_mul():\n    assert mul(2, 4) == 8\n"
)


def replace(replies: Any, i: int, old: str, new: str) -> dict[str, Any]:
    return replies.replace("calc/ops.py", old, new, i)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "calcrepo"
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc/__init__.py").write_text("")
    (root / "calc/ops.py").write_text(OPS)
    (root / "tests/test_ops.py").write_text(TESTS)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def run_queues(
    repo: Path,
    tmp_path: Path,
    model: Any,
    queues: str,
    *,
    max_iterations: int = 50,
    hook: str | None = "pytest",
) -> tuple[Stop, QueuePolicy, FeedbackLoop, Workspace]:
    """Build the run as the session does: the feedback loop's hooks, the queue policy among them."""
    settings = FeedbackSettings(hook=hook, hook_scope="all", queues=queues, rollback_threshold=10)
    ws = Workspace.create(repo, parent=tmp_path)
    runtime = LocalRuntime(ws.root, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    loop = build_feedback(
        settings, workspace=ws, runtime=runtime, out_dir=tmp_path / "out", rules=check_feedback(settings)
    )
    assert loop is not None and loop.queues is not None and loop.hooks[-1] is loop.queues
    agent = Agent(
        model=model,
        fmt=get_format("native"),
        toolbox=default_toolbox(),
        ctx=ToolContext(runtime=runtime, root=ws.root),
        params=SamplingParams(),
        limits=RunLimits(max_iterations=max_iterations),
        trajectory=Trajectory(tmp_path / "traj.jsonl"),
        patch=ws.diff,
        hooks=loop.hooks,
    )
    try:
        stop = agent.run("system", "fix mul")
    finally:
        runtime.close()
        loop.close()
    return stop, loop.queues, loop, ws


def last_content(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


@pytest.mark.slow
def test_fast_spends_its_budget_then_deep_restores_the_checkpoint_and_fixes(
    repo: Path, tmp_path: Path, replies: Any, fake_model: Any
) -> None:
    script = [
        # 1 of 2 pass: checkpoint 1
        replace(replies, 0, "    return a + b\n\n\ndef mul", "    return a + b  # sum\n\n\ndef mul"),
        replace(replies, 1, "    return a + b  # sum", "    return a - b"),  # breaks add: worse
        replies.bash("true", 2),
        # from checkpoint 1
        replace(replies, 3, "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b"),
        replies.finish("mul multiplies", 4),
    ]
    server = fake_model(script)
    stop, runner, loop, ws = run_queues(repo, tmp_path, server, "fast:3,deep:10,rescue:7")
    assert stop.status == "finished", stop.reason
    assert "[queue fast: up to 3 steps]" in last_content(server.requests[0])
    deep = last_content(server.requests[3])
    assert "[queue deep: up to 10 steps]" in deep and "restored to checkpoint 1" in deep
    ops = (ws.root / "calc/ops.py").read_text()
    assert (
        "return a + b  # sum" in ops and "return a * b" in ops and "a - b" not in ops
    )  # the break was undone
    fields = runner.result_fields()
    assert [(q["name"], q["budget"], q["spent"], q["outcome"]) for q in fields["queues"]] == [
        ("fast", 3, 3, "not_green"),
        ("deep", 10, 2, "green"),
        ("rescue", 7, 0, "skipped"),
    ]
    assert fields["needs_review"] is False and fields["queues"][1]["tokens"] > 0
    kinds = [(e["kind"], e["queue"]) for e in loop.events.events if e["kind"].startswith("queue_")]
    assert kinds == [
        ("queue_start", "fast"),
        ("queue_end", "fast"),
        ("queue_start", "deep"),
        ("queue_end", "deep"),
    ]
    assert json.dumps(fields)  # result.json-ready


def test_rescue_applies_the_rules_and_still_failing_ends_needs_review(
    repo: Path, tmp_path: Path, replies: Any, fake_model: Any
) -> None:
    script = [
        replace(
            replies, 0, "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * missing_helper(b)"
        ),
        replies.bash("true", 1),
        replies.bash("true", 2),
    ]
    server = fake_model(script)
    stop, runner, loop, _ = run_queues(repo, tmp_path, server, "fast:1,deep:1,rescue:1")
    assert stop.status == "max_iterations" and "needs_review" in stop.reason
    rescue = last_content(server.requests[2])
    assert (
        "[queue rescue: up to 1 steps]" in rescue
        and "`missing_helper` is used where it is not defined" in rescue
    )
    fields = runner.result_fields()
    assert fields["needs_review"] is True
    assert [(q["name"], q["spent"], q["outcome"]) for q in fields["queues"]] == [
        ("fast", 1, "not_green"),
        ("deep", 1, "not_green"),
        ("rescue", 1, "not_green"),
    ]
    assert fields["queues"][2]["notes"] == ["name_error: hint"]
    assert any(e["kind"] == "rescue" and e["rule"] == "name_error" for e in loop.events.events)


class NoTests:
    """A feedback loop without a test hook: no report, no checkpoints."""

    last_report: Report | None = None

    def restore_best(self, why: str) -> str | None:
        return None


def test_global_limit_still_ends_the_run_inside_a_queue(
    repo: Path, tmp_path: Path, replies: Any, fake_model: Any
) -> None:
    model = fake_model([replies.bash("true", i) for i in range(6)])
    policy = QueuePolicy(NoTests(), None, [QueueSpec("fast", 3), QueueSpec("deep", 3)])
    runtime = LocalRuntime(repo)
    agent = Agent(
        model=model,
        fmt=get_format("native"),
        toolbox=default_toolbox(),
        ctx=ToolContext(runtime=runtime, root=repo),
        params=SamplingParams(),
        limits=RunLimits(max_iterations=2),
        trajectory=Trajectory(tmp_path / "t.jsonl"),
        patch=lambda: "",
        hooks=[policy],
    )
    try:
        stop = agent.run("system", "task")
    finally:
        runtime.close()
    assert stop.status == "max_iterations" and len(model.requests) == 2
    assert "[queue fast: up to 3 steps]" in model.requests[0]["messages"][-1]["content"]
    assert [(q["spent"], q["outcome"]) for q in policy.result_fields()["queues"]] == [
        (2, "max_iterations"),
        (0, "skipped"),
    ]


def test_finishing_with_the_tests_failing_goes_on_to_the_next_queue(
    repo: Path, tmp_path: Path, replies: Any, fake_model: Any
) -> None:
    model = fake_model([replies.finish("done?", 0), replies.bash("true", 1), replies.finish("done", 2)])
    policy = QueuePolicy(Failing(), None, [QueueSpec("fast", 3), QueueSpec("deep", 3)])
    runtime = LocalRuntime(repo)
    agent = Agent(
        model=model,
        fmt=get_format("native"),
        toolbox=default_toolbox(),
        ctx=ToolContext(runtime=runtime, root=repo),
        params=SamplingParams(),
        limits=RunLimits(),
        trajectory=Trajectory(tmp_path / "t.jsonl"),
        patch=lambda: "",
        hooks=[policy],
    )
    try:
        stop = agent.run("system", "task")
    finally:
        runtime.close()
    told = model.requests[1]["messages"][-1]["content"]
    assert (
        "You finished, but the tests still fail; continuing." in told
        and "[queue deep: up to 3 steps]" in told
    )
    # the last queue has no next one: the finish ends the run, labelled as spent with the tests failing
    assert stop.status == "max_iterations" and "still fail" in stop.reason and len(model.requests) == 3
    outcomes = [(q["name"], q["spent"], q["outcome"]) for q in policy.result_fields()["queues"]]
    assert outcomes == [("fast", 1, "finished_failing"), ("deep", 2, "finished_failing")]


class Failing(NoTests):
    """Tests that ran and fail."""

    last_report = Report(statuses={"t::a": "FAILED"})


def test_parse_queues() -> None:
    assert parse_queues("fast:3,deep:10,rescue:7") == [
        QueueSpec("fast", 3),
        QueueSpec("deep", 10),
        QueueSpec("rescue", 7),
    ]
    assert parse_queues(" Deep:4 , rescue:2") == [QueueSpec("deep", 4), QueueSpec("rescue", 2)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "empty"),
        ("fast", "'fast': expected NAME:STEPS"),
        ("fast:3,slow:2", "'slow:2': unknown queue 'slow'"),
        ("fast:0", "'fast:0': the budget must be a positive number"),
        ("fast:x", "'fast:x': the budget must be a positive number"),
        ("fast:1,fast:2", "'fast:2': queue 'fast' given twice"),
        ("deep:2,fast:1", "'fast:1': queues escalate in the order fast -> deep -> rescue"),
    ],
)
def test_bad_queue_spec_names_the_part(spec: str, expected: str) -> None:
    with pytest.raises(QueueError) as info:
        parse_queues(spec)
    assert (
        str(info.value).startswith("--queues: ")
        and expected in str(info.value)
        and "\n" not in str(info.value)
    )
