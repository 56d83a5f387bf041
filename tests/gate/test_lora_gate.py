"""Gate 4 on the tiny local model: a few real LoRA steps (peft), fuse, save, reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.gate.lora import LoraSettings, run_lora_gate
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError

ROWS = tuple(
    {
        "prompt": f"Read file {name}",
        "completion": json.dumps({"name": "read_file", "arguments": {"path": name}}),
    }
    for name in ("a.py", "b.py", "src/app.py", "tests/t.py")
)


def test_lora_learns_fuses_and_reloads(tiny_model: Path, tmp_path: Path) -> None:
    settings = LoraSettings(
        weights=str(tiny_model),
        examples=ROWS[:3],
        validation=ROWS[3:],
        steps=6,
        out_dir=str(tmp_path / "merged"),
    )
    result = run_lora_gate(settings)
    assert result.status == "pass", result.failures
    curve = result.details["loss_curve"]
    assert len(curve) == 6 and curve[-1] < curve[0]
    assert result.details["validation_loss_after"] <= result.details["validation_loss_before"]
    assert (tmp_path / "merged" / "config.json").is_file()
    assert json.loads((tmp_path / "merged" / "loss_curve.json").read_text()) == curve
    assert "peft" in result.versions


def test_a_learning_rate_that_diverges_fails(tiny_model: Path, tmp_path: Path) -> None:
    settings = LoraSettings(
        weights=str(tiny_model), examples=ROWS[:3], validation=ROWS[3:], steps=2, learning_rate=50.0,
        out_dir=str(tmp_path / "merged"),
    )  # fmt: skip
    result = run_lora_gate(settings)
    assert result.status == "fail"
    assert {c.name for c in result.failures} & {"training loss falls", "no divergence"}


def test_gate_run_lora_from_config(tiny_model: Path, tmp_path: Path) -> None:
    for name, rows in (("train.jsonl", ROWS[:3]), ("valid.jsonl", ROWS[3:])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "gates.toml"
    config.write_text(
        f'[gate4]\nweights = "{tiny_model}"\nexamples = "train.jsonl"\nvalidation = "valid.jsonl"\n'
        'steps = 4\nout_dir = "merged"\n'
    )
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.exit_code == 0, decision.notes
    assert (tmp_path / "merged" / "config.json").is_file() and (
        tmp_path / "out" / "gate4-lora.json"
    ).is_file()
    (tmp_path / "valid.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(GateInputError, match="valid.jsonl:1: expected"):
        load_config(config)


def test_cli_lora_bad_input_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    args = ["gate", "lora", "--weights", str(tmp_path), "--examples", str(tmp_path / "train.jsonl")]
    missing = CliRunner().invoke(app, [*args, "--validation", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "cannot read" in missing.output and "Traceback" not in missing.output
