"""The loop's one driver: what a hook's action does to the run, in the process (FakeModel, no HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devloop.agent import Agent, ExitStatus, Inject, Restore, Resume, RunLimits, StepHook, StepInfo, Stop
from devloop.formats import get_format
from devloop.runtime import LocalRuntime
from devloop.tools.base import ToolContext
from devloop.tools.registry import default_toolbox
from devloop.trajectory import Trajectory
from devloop.types import SamplingParams


class Scripted(StepHook):
    """Answers step N with actions[N] and records what it saw."""

    def __init__(self, actions: dict[int, Any], first: Any = None) -> None:
        self.actions, self.first = actions, first
        self.seen: list[tuple[int, bool, str | None]] = []
        self.ended: Stop | None = None

    def before_run(self) -> Any:
        return self.first

    def after_step(self, info: StepInfo) -> Any:
        self.seen.append((info.step, info.changed, info.stop.status if info.stop else None))
        return self.actions.get(info.step)

    def after_run(self, stop: Stop) -> None:
        self.ended = stop


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path)
    yield rt
    rt.close()


def make_agent(
    tmp_path: Path,
    runtime: LocalRuntime,
    model: Any,
    hooks: list[Any],
    *,
    patch: Any = lambda: "",
    patch_now: Any = None,
    **limits: Any,
) -> Agent:
    return Agent(
        model=model,
        fmt=get_format("native"),
        toolbox=default_toolbox(),
        ctx=ToolContext(runtime, tmp_path),
        params=SamplingParams(),
        limits=RunLimits(**limits),
        trajectory=Trajectory(tmp_path / "traj.jsonl"),
        patch=patch,
        patch_now=patch_now,
        hooks=hooks,
    )


def run(tmp_path: Path, runtime: LocalRuntime, model: Any, hooks: list[Any], **kwargs: Any) -> Stop:
    return make_agent(tmp_path, runtime, model, hooks, **kwargs).run("system", "task")


def last(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def test_inject_reaches_the_next_request_and_the_trajectory(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    model = fake_model([replies.bash("true"), replies.finish()])
    hook = Scripted({1: Inject("[hint] look at ops.py")}, first=Inject("[queue] be quick"))
    stop = run(tmp_path, runtime, model, [hook])
    assert stop.status is ExitStatus.FINISHED and hook.ended is stop
    assert last(model.requests[0]).endswith("task\n\n[queue] be quick")
    assert last(model.requests[1]).endswith("[hint] look at ops.py")
    steps = [json.loads(x) for x in (tmp_path / "traj.jsonl").read_text().splitlines()]
    assert [s["feedback"] for s in steps if s["type"] == "step"] == [["[hint] look at ops.py"], []]


def test_restore_sets_the_tree_the_next_change_is_judged_against(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    patches = iter(["edit-1", "edit-2", "edit-1"])
    model = fake_model([replies.bash("true", i) for i in range(3)])
    hook = Scripted({2: Restore("[rollback] undone", "edit-1")})
    run(tmp_path, runtime, model, [hook], patch=lambda: next(patches), max_iterations=3)
    # step 3 leaves the tree as restored after step 2: not a change
    assert [changed for _, changed, _ in hook.seen] == [True, True, False]
    assert last(model.requests[2]).endswith("[rollback] undone")


def test_resume_overrules_a_finish_and_a_stop_ends_the_run(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    model = fake_model([replies.finish("early"), replies.bash("true"), replies.bash("true")])
    hook = Scripted({1: Resume("the tests still fail"), 2: Stop(ExitStatus.MAX_ITERATIONS, "policy says")})
    later = Scripted({})
    stop = run(tmp_path, runtime, model, [hook, later])
    assert (stop.status, stop.reason, len(model.requests)) == ("max_iterations", "policy says", 2)
    assert hook.seen == [(1, False, "finished"), (2, False, None)]
    assert later.seen == [(1, False, None), (2, False, "max_iterations")]  # later hooks see the earlier acts
    assert last(model.requests[1]).endswith("the tests still fail")


def test_limits_act_last_and_never_overrule_a_finish(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    model = fake_model([replies.bash("true"), replies.finish()])
    assert run(tmp_path, runtime, model, [Scripted({})], max_iterations=2).status == "finished"
    model = fake_model([replies.bash("true", i) for i in range(5)])
    hook = Scripted({})
    stop = run(tmp_path, runtime, model, [hook], max_iterations=2)
    assert stop.status == "max_iterations" and len(model.requests) == 2 and hook.ended is stop


def test_a_model_error_is_a_stop_the_hooks_are_told_of(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    hook = Scripted({})
    stop = run(tmp_path, runtime, fake_model([replies.bash("true")]), [hook])
    assert stop.status == "model_error" and "only 1 replies" in stop.reason and hook.ended is stop


def test_a_crash_in_a_hook_is_reraised_after_the_hooks_are_told(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any
) -> None:
    class Broken(StepHook):
        def after_step(self, info: StepInfo) -> None:
            raise RuntimeError("hook broke")

    told = Scripted({})
    with pytest.raises(RuntimeError, match="hook broke"):
        run(tmp_path, runtime, fake_model([replies.bash("true")]), [told, Broken()])
    assert told.ended is not None and told.ended.status == "runtime_error"


def _step_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["type"] == "step"]


@pytest.mark.parametrize("told", [True, False])
def test_a_patch_told_at_once_is_written_before_the_next_request(
    tmp_path: Path, runtime: LocalRuntime, replies: Any, fake_model: Any, told: bool
) -> None:
    model = fake_model([replies.bash("true"), replies.bash("true"), replies.finish()])
    lines_seen: list[int] = []
    real = model.complete

    def complete(*args: Any) -> Any:
        lines_seen.append(len(_step_lines(tmp_path / "traj.jsonl")))
        return real(*args)

    model.complete = complete
    computed: list[int] = []

    def background() -> str:
        computed.append(1)
        return "computed"

    stop = run(
        tmp_path,
        runtime,
        model,
        [],
        patch=background,
        patch_now=(lambda: "known") if told else (lambda: None),
    )
    assert stop.status is ExitStatus.FINISHED
    patches = [e["patch"] for e in _step_lines(tmp_path / "traj.jsonl")]
    if told:  # each step's line is there when the next request goes out, and nothing ran in the background
        assert lines_seen == [0, 1, 2] and computed == [] and patches == ["known"] * 3
    else:  # computed while the model replies: the line follows once it is ready
        assert lines_seen == [0, 0, 1] and len(computed) == 3 and patches == ["computed"] * 3
