"""The iterative protocol end to end: re-runs only unfinished or empty attempts, at 0 then 0.1."""

from __future__ import annotations

import json

from devloop.config import load_settings
from devloop.eval import ProtocolConfig, UnitStore, run_protocol


def _run(tasks, server, tmp_path, env_cache, config, run_id="it", **kw):
    settings = load_settings(model="openai/test", base_url=server.url, max_iterations=4)
    return run_protocol(
        tasks,
        settings,
        config,
        run_id=run_id,
        output=tmp_path / "out",
        cache_dir=env_cache,
        **kw,
    )


def test_empty_first_attempt_is_rerun_at_0_1_and_the_fix_wins(
    calc_task, serve, env_manager, env_cache, tmp_path
):
    server = serve({"A": ["empty", "fix"], "B": ["fix"]})
    result = _run(
        [calc_task("A"), calc_task("B")], server, tmp_path, env_cache, ProtocolConfig(name="iterative")
    )
    # A: attempt 1 (one request, finish) at 0, attempt 2 (three requests) at 0.1; B: once, at 0.
    assert server.temperatures("A") == [0.0, 0.1, 0.1, 0.1]
    assert server.temperatures("B") == [0.0, 0.0, 0.0]
    assert result.report.resolved == 2 and result.report.resolve_rate == 1.0
    rows = result.sections["attempts"]
    assert [(r["attempted"], r["resolved"], r["empty_patch"]) for r in rows] == [
        (2, 1, 1),
        (1, 1, 0),
        (0, 0, 0),
    ]
    assert [r["cumulative_resolved"] for r in rows] == [1, 2, 2]
    assert result.sections["final"]["chosen_unit"] == {"calc__calc-A": 1, "calc__calc-B": 0}
    assert 0 < rows[0]["cumulative_rate"]["lo"] < 0.5 < rows[0]["cumulative_rate"]["hi"]  # Wilson CI on 1/2
    root = tmp_path / "out" / "it"
    on_disk = json.loads((root / "report.json").read_text())
    assert on_disk["resolved_ids"] == ["calc__calc-A", "calc__calc-B"] and on_disk["attempts"] == rows
    verdict = json.loads((root / "instances" / "calc__calc-A" / "verdict.json").read_text())
    assert verdict["category"] == "resolved" and verdict["extra"]["unit"] == 1
    assert verdict["extra"]["temperature"] == 0.1
    assert (root / "instances" / "calc__calc-A" / "attempts" / "1" / "agent" / "trajectory.jsonl").is_file()
    assert not (root / "instances" / "calc__calc-B" / "attempts" / "1").exists()


def test_the_latest_non_empty_patch_is_the_prediction(calc_task, serve, env_manager, env_cache, tmp_path):
    # C: a partial patch cut by the limit, then two empty attempts: the partial patch stands.
    # D: a partial patch cut by the limit, then the fix: the later patch wins.
    server = serve({"C": ["half", "empty", "empty"], "D": ["half", "fix"]})
    result = _run(
        [calc_task("C"), calc_task("D")], server, tmp_path, env_cache, ProtocolConfig(name="iterative")
    )
    assert result.sections["final"]["chosen_unit"] == {"calc__calc-C": 0, "calc__calc-D": 1}
    assert result.report.resolved_ids == ["calc__calc-D"] and result.report.unresolved_ids == ["calc__calc-C"]
    store = UnitStore(tmp_path / "out", "it")
    assert "a + b" in store.read_prediction("calc__calc-C").model_patch
    assert store.read_unit("calc__calc-C", 0).exit_status == "max_iterations"
    assert server.temperatures("C")[:4] == [0.0] * 4 and set(server.temperatures("C")[4:]) == {0.1}
    rows = result.sections["attempts"]
    assert [r["attempted"] for r in rows] == [2, 2, 1] and rows[0]["not_finished"] == 2


def test_resume_reuses_graded_units_and_refuses_other_settings(
    calc_task, serve, env_manager, env_cache, tmp_path
):
    server = serve({"A": ["empty", "fix"]})
    _run([calc_task("A")], server, tmp_path, env_cache, ProtocolConfig(name="iterative"))
    n = len(server.requests)
    again = _run([calc_task("A")], server, tmp_path, env_cache, ProtocolConfig(name="iterative"))
    assert len(server.requests) == n and again.report.resolved == 1  # nothing re-run
    other = ProtocolConfig(name="iterative", temperatures=[0.5, 0.1, 0.1])
    try:
        _run([calc_task("A")], server, tmp_path, env_cache, other)
    except ValueError as exc:
        assert "other agent settings" in str(exc) and "temperature 0" in str(exc)
    else:
        raise AssertionError("resuming with another temperature should be refused")
