"""Gate 2 against a served model: the scripted OpenAI-compatible server, reached by devloop's client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.gate.latency import LatencySettings, p90, run_latency_gate
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError


def _script(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "script.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def _answers(n: int) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": f"def f():\n    return {i}\n"} for i in range(n)]


def test_p90_is_nearest_rank() -> None:
    assert p90([float(v) for v in range(1, 11)]) == 9.0
    assert p90([3.0]) == 3.0 and p90([1.0, 5.0]) == 5.0


def test_latency_measured_per_query_and_checked(tmp_path: Path) -> None:
    prompts = ("one", "two", "three")
    generous = LatencySettings(
        model=f"scripted/{_script(tmp_path, _answers(3))}", prompts=prompts, max_mean_s=600, max_p90_s=600
    )
    result = run_latency_gate(generous)
    assert result.status == "pass", result.failures
    times = result.details["times_s"]
    assert len(times) == 3 and all(t > 0 for t in times)
    assert result.details["mean_s"] == pytest.approx(sum(times) / 3) and result.details["p90_s"] == max(times)
    # A baseline no real round trip can match: the ratio check fails, naming the figures.
    strict = LatencySettings(
        model=f"scripted/{_script(tmp_path, _answers(3))}", prompts=prompts, baseline_mean_s=1e-9
    )
    failed = run_latency_gate(strict)
    assert [c.name for c in failed.failures] == ["against baseline"] and "baseline" in failed.failures[
        0
    ].detail


def test_baseline_recorded_by_a_gate2_run_on_the_current_model(tmp_path: Path) -> None:
    """`gate run` on the baseline model first writes gate2-latency.json; the candidate's run reads its mean."""
    _script(tmp_path, _answers(4))
    config = tmp_path / "gates.toml"
    config.write_text('[gate2]\nmodel = "scripted/script.jsonl"\nprompts = ["a", "b"]\n')
    run_gates(load_config(config), tmp_path / "baseline")
    recorded = json.loads((tmp_path / "baseline" / "gate2-latency.json").read_text())["details"]
    config.write_text(
        '[gate2]\nmodel = "scripted/script.jsonl"\nprompts = ["a", "b"]\nbaseline = "baseline/gate2-latency.json"\n'
        "max_ratio = 1000000.0\n"
    )
    (result,) = run_gates(load_config(config), tmp_path / "candidate").results
    assert result.status == "pass", result.failures
    assert result.details["baseline"]["mean_s"] == recorded["mean_s"]
    assert result.details["ratio_to_baseline"] == pytest.approx(result.details["mean_s"] / recorded["mean_s"])
    # A recorded mean no round trip can match fails the check, with the recorded figure in its detail.
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"gate": 2, "details": {"mean_s": 1e-9, "p90_s": 1e-9}}))
    strict = LatencySettings(
        model=f"scripted/{_script(tmp_path, _answers(2))}", prompts=("a",), baseline=str(fast)
    )
    failed = run_latency_gate(strict)
    assert [c.name for c in failed.failures] == ["against baseline"] and "1e-09 s" in failed.failures[
        0
    ].detail
    # A file that is not a gate2 result is named, with what it lacks.
    fast.write_text(json.dumps({"gate": 3, "details": {}}))
    with pytest.raises(GateInputError, match="fast.json: not a gate2-latency.json"):
        run_latency_gate(strict)
    fast.write_text(json.dumps({"gate": 2, "details": {"queries": 0}}))
    with pytest.raises(GateInputError, match="details.mean_s is missing"):
        run_latency_gate(strict)


def test_a_server_error_fails_the_gate(tmp_path: Path) -> None:
    entries = [*_answers(1), {"fault": {"status": 400, "message": "bad request"}}]
    settings = LatencySettings(model=f"scripted/{_script(tmp_path, entries)}", prompts=("a", "b", "c"))
    result = run_latency_gate(settings)
    assert result.status == "fail" and result.failures[0].name == "every query answered"


def test_gate_run_latency_is_a_soft_no_go(tmp_path: Path) -> None:
    _script(tmp_path, _answers(2))
    config = tmp_path / "gates.toml"
    config.write_text(
        '[gate0]\ntokenizer = "mistral-common:mistral_instruct_tokenizer_241114.model.v7"\n'
        '[gate2]\nmodel = "scripted/script.jsonl"\nprompts = ["a", "b"]\nbaseline_mean_s = 1e-9\n'
    )
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.exit_code == 3 and [r.status for r in decision.results] == ["pass", "fail"]
    assert "soft no-go" in (tmp_path / "out" / "decision.md").read_text()
    assert json.loads((tmp_path / "out" / "gate2-latency.json").read_text())["details"]["queries"] == 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("prompts = ['a']\n", "gate2.model"),
        ("model = 'scripted/x'\nprompts = []\n", "gate2.prompts"),
        ("model = 'scripted/x'\nmax_mean_s = -1\n", "gate2.max_mean_s"),
        ("model = 'scripted/x'\nwarmup = 1\n", "unknown key 'warmup'"),
        ("model = 'scripted/x'\nbaseline = 2.9\n", "gate2.baseline: a path"),
        ("model = 'scripted/x'\nbaseline = 'b.json'\nbaseline_mean_s = 2.9\n", "not both"),
    ],
)
def test_bad_gate2_table(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "gates.toml"
    config.write_text("[gate2]\n" + table)
    with pytest.raises(GateInputError, match=message):
        load_config(config)


def test_cli_latency_subcommand(tmp_path: Path) -> None:
    script = _script(tmp_path, _answers(5))
    out = tmp_path / "out"
    done = CliRunner().invoke(
        app, ["gate", "latency", "--model", f"scripted/{script}", "--max-mean-s", "600", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "ok   mean" in done.output and (out / "gate2-latency.json").is_file()
    missing = CliRunner().invoke(app, ["gate", "latency", "--model", f"scripted/{tmp_path / 'none.jsonl'}"])
    assert missing.exit_code == 2 and "no such script file" in missing.output


def test_cli_latency_on_local_weights(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["gate", "latency", "--weights", str(tiny_model), "--max-tokens", "2", "--out", str(out)]
    done = CliRunner().invoke(app, [*args, "--max-mean-s", "600"])
    assert done.exit_code == 0, done.output
    data = json.loads((out / "gate2-latency.json").read_text())
    assert data["details"]["model"] == f"local/{tiny_model}" and data["details"]["queries"] == 5
    assert len(data["details"]["times_s"]) == 5 and data["details"]["p90_s"] >= data["details"]["mean_s"] > 0
    # The subcommand times the gate as `gate run` does, for decision.md's seconds column.
    assert data["details"]["gate_s"] >= sum(data["details"]["times_s"])
    assert "| 2 | latency | pass | soft-no-go | - |" not in (out / "decision.md").read_text()
    both = CliRunner().invoke(app, [*args, "--model", "scripted/x.jsonl"])
    assert both.exit_code == 2 and "exactly one of --model" in both.output
