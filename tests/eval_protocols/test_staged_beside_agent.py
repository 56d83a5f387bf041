"""An agent attempt's grading box (the tree at base, its sandbox) made while the agent works: out of the
agent's reach, the same verdicts as without it, and nothing left behind whatever the attempt's end."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devloop.config import load_settings
from devloop.eval import Category, ProtocolConfig, RunStore, prefetch, run_protocol
from devloop.eval.attempt import AttemptJob, HarnessSettings, run_attempt
from devloop.eval.executors import LocalExecutor
from devloop.runtime.bwrap import probe_bwrap
from devloop.runtime.later import wait_removed

pytestmark = pytest.mark.skipif(
    probe_bwrap() is not None, reason="grading is staged beside an agent only in bwrap"
)


def _run(tasks, url, tmp_path, env_cache, *, prefetch, run_id, **settings):
    run_protocol(tasks, load_settings(model="openai/test", base_url=url, max_iterations=6, sandbox="bwrap",
                                      **settings),
                 ProtocolConfig(name="single"), run_id=run_id, output=tmp_path / "out", cache_dir=env_cache,
                 executor=LocalExecutor(1, prefetch=prefetch))  # fmt: skip
    store = RunStore(tmp_path / "out", run_id)
    return {t.instance_id: store.read_verdict(t.instance_id) for t in tasks}


def _watch_staging(monkeypatch, where: Path) -> list[bool]:
    """Per grading box staged from now on: whether it made a tree where LOOK looks (seen from the host)."""
    staged: list[bool] = []
    real_stage = prefetch._stage

    def stage(item, job, kind="grade"):
        real_stage(item, job, kind)
        if kind == "grade":
            staged.append(item.staged is not None and bool(list(where.glob("devloop-*/grade/tree/calc.py"))))

    monkeypatch.setattr(prefetch, "_stage", stage)
    return staged


def _left(where: Path) -> list[str]:
    wait_removed()
    return sorted(p.name for p in where.iterdir() if p.name.startswith("devloop-calc"))


def test_the_agent_never_sees_its_staged_grading_and_the_verdicts_are_the_same(
    calc_task, serve, env_manager, env_cache, tmp_path, tmpdir_of_workdirs, monkeypatch
):
    staged = _watch_staging(monkeypatch, tmpdir_of_workdirs)
    server = serve({"A": ["look_then_fix", "look_then_fix"], "B": ["fix", "fix"]})
    tasks = [calc_task("A"), calc_task("B")]
    on = _run(tasks, server.url, tmp_path, env_cache, prefetch=True, run_id="on")
    assert _left(tmpdir_of_workdirs) == []
    off = _run(tasks, server.url, tmp_path, env_cache, prefetch=False, run_id="off")
    assert [v.extra.get("prefetched") for v in on.values()] == [True, True]  # each found its box made
    assert not any(v.extra.get("prefetched") for v in off.values())
    for iid, verdict in on.items():
        assert verdict.category == off[iid].category == Category.RESOLVED
        assert verdict.tests_status == off[iid].tests_status
    # The agent looked for 4 s for a staged tree beside its own: its patch records that it found none
    # (only its own line, no path), in both runs.
    for run_id in ("on", "off"):
        patch = RunStore(tmp_path / "out", run_id).read_prediction("calc__calc-A").model_patch
        assert "+looked" in patch and "grade/tree" not in patch
    assert staged == [True, True]  # from the host, the staged tree was where the agent looked
    assert _left(tmpdir_of_workdirs) == []


def test_a_box_staged_for_a_grading_that_does_not_come_is_ended_and_removed(
    calc_task, serve, env_manager, env_cache, tmp_path, tmpdir_of_workdirs, monkeypatch
):
    staged = _watch_staging(monkeypatch, tmpdir_of_workdirs)
    server = serve({"E": ["empty"]})
    verdicts = _run([calc_task("E")], server.url, tmp_path, env_cache, prefetch=True, run_id="empty")
    assert verdicts["calc__calc-E"].category == Category.EMPTY_PATCH
    assert staged == [True] and _left(tmpdir_of_workdirs) == []
    staged.clear()
    # A model server that is not there: the agent fails and its grading never starts; the attempt itself
    # ends what was staged for it (no executor's close here to do it).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    settings = load_settings(model="openai/test", base_url=dead, max_retries=0, sandbox="bwrap")
    harness = HarnessSettings(tmp_path / "out", "dead", env_cache, sandbox="bwrap")
    record = run_attempt(AttemptJob(calc_task("F"), 0, settings, harness, stage_grading=True))
    assert record.verdict.category == Category.AGENT_ERROR
    assert staged == [True] and _left(tmpdir_of_workdirs) == []


def test_the_next_agents_tree_is_made_during_the_tests_and_its_install_waits_for_its_turn(
    calc_task, serve, env_manager, spec, env_cache, tmp_path, tmpdir_of_workdirs
):
    from devloop.eval.prefetch import Prefetcher

    environment = {**spec.model_dump(), "install": "echo built > out.txt"}
    server = serve({"A": ["fix"], "B": ["fix"]})
    tasks = [calc_task("A").model_copy(update={"environment": spec.model_validate(environment)}),
             calc_task("B").model_copy(update={"environment": spec.model_validate(environment)})]  # fmt: skip
    on = _run(tasks, server.url, tmp_path, env_cache, prefetch=True, run_id="on")
    off = _run(tasks, server.url, tmp_path, env_cache, prefetch=False, run_id="off")
    assert [v.extra.get("agent_prefetched") for v in on.values()] == [None, True]
    assert not any(v.extra.get("agent_prefetched") for v in off.values())
    assert [v.category for v in on.values()] == [v.category for v in off.values()] == [Category.RESOLVED] * 2
    for run_id in ("on", "off"):  # the install ran in the agent's tree, in its turn: not in the patch
        assert "out.txt" not in RunStore(tmp_path / "out", run_id).read_prediction("calc__calc-B").model_patch
    assert _left(tmpdir_of_workdirs) == []
    # Staged by hand: the tree is the one-commit repository, its workspace seed made, no install run.
    settings = load_settings(model="openai/test", base_url=server.url, sandbox="bwrap")
    job = AttemptJob(
        tasks[1], 0, settings, HarnessSettings(tmp_path / "out", "hand", env_cache, sandbox="bwrap")
    )
    ahead = Prefetcher()
    ahead.start(job, "agent")
    assert ahead.claim(job) is None  # a grading's box was not what was staged; that staging is ended
    ahead.start(job, "agent")
    claimed = ahead.claim(job, "agent")
    assert claimed is not None
    staged, _ = claimed
    tree = staged.box.tree
    assert (tree / ".git").is_dir() and (tree / "calc.py").is_file() and not (tree / "out.txt").exists()
    assert staged.box.git_seed is not None
    staged.box.stop()
    ahead.discard()
