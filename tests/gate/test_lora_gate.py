"""Gate 4 on the tiny local Mistral-architecture model: real LoRA steps (peft + trl's SFTTrainer) on the
suite's training split, fuse, save, reload, held-out evaluation, loss curve PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.gate.lora import LoraSettings, run_lora_gate
from devloop.gate.lora_data import read_examples, suite_rows
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError
from devloop.gate.suite import load_suite

# Two short tools keep the prompts (and so the CPU time) small; the shipped suite's rows are checked above.
MINI = str(Path(__file__).with_name("mini_suite.json"))

ROWS = tuple(
    {
        "prompt": f"Read file {name}",
        "completion": json.dumps({"name": "read_file", "arguments": {"path": name}}),
    }
    for name in ("a.py", "b.py", "src/app.py", "tests/t.py")
)


def test_suite_training_rows_are_rendered_in_the_format() -> None:
    rows = suite_rows(load_suite(), "train", "hermes")
    assert len(rows) == 16
    first = rows[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    calls = [r["messages"][-1]["content"] for r in rows]
    assert any(c.startswith("<tool_call>") and '"read_file"' in c for c in calls)
    assert any("<tool_call>" not in c for c in calls)  # the direct answers are learned too


def test_lora_on_the_suite_learns_fuses_reloads_and_is_evaluated(tiny_model: Path, tmp_path: Path) -> None:
    settings = LoraSettings(
        weights=str(tiny_model), suite=MINI, steps=6, learning_rate=5e-3, out_dir=str(tmp_path / "merged"),
        min_accuracy=0.0, eval_max_tokens=4, baseline=False,
    )  # fmt: skip
    result = run_lora_gate(settings)
    assert result.status == "pass", result.failures
    curve = result.details["loss_curve"]
    assert len(curve) == 6 and curve[-1] < curve[0]
    assert result.details["validation_loss_after"] <= result.details["validation_loss_before"]
    # Validated every other step (about three passes per run), not after each one; the curve ends at 6.
    assert [step for step, _ in result.details["eval_curve"]] == [2, 4, 6]
    assert result.details["eval_every"] == 2
    merged = tmp_path / "merged"
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    png = Path(result.details["loss_curve_png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert json.loads((merged / "loss_curve.json").read_text())["train"] == curve
    held = result.details["held_out_after"]
    assert held["total"] == 2 and 0 <= held["passed"] <= 2
    assert {"torch", "transformers", "peft", "trl"} <= set(result.versions)
    # A random model cannot write tool calls: at the 60 % the same run fails on that check.
    strict = LoraSettings(
        weights=str(tiny_model),
        suite=MINI,
        steps=2,
        out_dir=str(tmp_path / "m2"),
        eval_max_tokens=4,
        baseline=False,
        eval_every=0,
    )
    failed = run_lora_gate(strict)
    # No validation pass during training: the curve's one point is devloop's own loss after it.
    assert failed.details["eval_curve"] == [(2, failed.details["validation_loss_after"])]
    assert [c.name for c in failed.failures] == ["held-out tool calls"] and "(min 60%)" in failed.failures[
        0
    ].detail


def test_a_learning_rate_that_diverges_fails(tiny_model: Path, tmp_path: Path) -> None:
    settings = LoraSettings(
        weights=str(tiny_model), suite=MINI, examples=ROWS[:3], validation=ROWS[3:], steps=2, learning_rate=50.0,
        out_dir=str(tmp_path / "merged"), min_accuracy=0.0, eval_max_tokens=2, baseline=False,
    )  # fmt: skip
    result = run_lora_gate(settings)
    assert result.status == "fail"
    assert {c.name for c in result.failures} & {"training loss falls", "no divergence"}


# A row in the shape `devloop dataset build` writes with its default (native) render: calls as OpenAI
# tool_calls with JSON-string arguments and no text, results as `tool` turns, per-turn loss weights.
NATIVE_ROW = {
    "instance_id": "x__y-1",
    "messages": [
        {"role": "system", "content": "You fix bugs."},
        {"role": "user", "content": "Fix a.py"},
        {"role": "assistant", "content": "", "weight": 1, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "x = 1"},
        {"role": "assistant", "weight": 1, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}]},
    ],
    "tools": [
        {"type": "function", "function": {"name": "read_file", "description": "Show a file.",
                                          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "run_tests", "description": "Run tests.",
                                          "parameters": {"type": "object", "properties": {}}}},
    ],
}  # fmt: skip


def test_native_dataset_rows_are_written_in_the_training_format() -> None:
    from devloop.formats.hermes import parse_hermes
    from devloop.gate.lora_data import in_text_format
    from devloop.tools.base import ToolSpec

    messages = in_text_format(NATIVE_ROW, "hermes")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[0]["content"].startswith("You fix bugs.") and "<tools>" in messages[0]["content"]
    assert "read_file" in messages[0]["content"] and "run_tests" in messages[0]["content"]
    specs = [ToolSpec("read_file", "", {"type": "object", "properties": {"path": {"type": "string"}}}),
             ToolSpec("run_tests", "", {"type": "object", "properties": {}})]  # fmt: skip
    first = parse_hermes(messages[2]["content"], specs)
    assert [(c.name, c.arguments) for c in first] == [("read_file", {"path": "a.py"})]
    assert "<tool_response>" in messages[3]["content"] and "x = 1" in messages[3]["content"]
    assert [c.name for c in parse_hermes(messages[4]["content"], specs)] == ["run_tests"]
    assert all(set(m) == {"role", "content"} for m in messages)  # no weight / tool_calls left
    plain = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert in_text_format(plain, "xml") == plain["messages"]


def test_read_examples_names_a_bad_native_call(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(NATIVE_ROW))
    broken["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{not json"
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(NATIVE_ROW) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(
        GateInputError, match=r"rows.jsonl:2: messages\[2\].tool_calls: read_file's arguments"
    ):
        read_examples(path)


def test_gate_run_lora_from_config_with_file_data(tiny_model: Path, tmp_path: Path) -> None:
    messages = {
        "messages": [{"role": "user", "content": "Read a.py"}, {"role": "assistant", "content": "ok"}]
    }
    rows = (*ROWS[:3], messages, NATIVE_ROW, ROWS[0])
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "valid.jsonl").write_text(json.dumps(ROWS[3]) + "\n")
    config = tmp_path / "gates.toml"
    config.write_text(
        f'[gate4]\nweights = "{tiny_model}"\nsuite = "{MINI}"\nexamples = "train.jsonl"\nvalidation = "valid.jsonl"\n'
        'steps = 3\nout_dir = "merged"\nmin_accuracy = 0.0\neval_max_tokens = 2\nbaseline = false\n'
        'max_examples = 5\nformat = "hermes"\n'
    )
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.results[0].status == "pass", decision.results[0].failures
    assert decision.results[0].details["examples"] == 5  # the first N = 5 of 6, the native row among them
    assert (tmp_path / "merged" / "config.json").is_file() and (
        tmp_path / "out" / "gate4-lora.json"
    ).is_file()
    assert "![loss curve](gate4-loss_curve.png)" in (tmp_path / "out" / "decision.md").read_text()
    assert (tmp_path / "out" / "gate4-loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "valid.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(GateInputError, match="valid.jsonl:1: expected"):
        load_config(config)


def test_read_examples_rejects_messages_without_an_answer(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(GateInputError, match="rows.jsonl:1: messages need"):
        read_examples(path)


def test_cli_lora_bad_input_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    args = ["gate", "lora", "--weights", str(tmp_path), "--examples", str(tmp_path / "train.jsonl")]
    missing = CliRunner().invoke(app, [*args, "--validation", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "cannot read" in missing.output and "Traceback" not in missing.output


def test_a_trainer_failure_is_one_line_in_the_result(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trl

    def broken(self: object, *args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory while training\nstack details")

    monkeypatch.setattr(trl.SFTTrainer, "train", broken)
    settings = LoraSettings(
        weights=str(tiny_model), suite=MINI, examples=ROWS[:3], validation=ROWS[3:], steps=1,
        out_dir=str(tmp_path / "merged"), eval_max_tokens=2, baseline=False,
    )  # fmt: skip
    result = run_lora_gate(settings)
    assert result.status == "fail" and [c.name for c in result.failures] == ["training runs"]
    assert result.failures[0].detail == "RuntimeError: out of memory while training"
    assert not (tmp_path / "merged").exists()


def test_the_validation_loss_counts_only_the_completion(tiny_model: Path) -> None:
    # The divergence check compares this with the trainer's completion-only loss: a prompt's tokens
    # must not count, whatever the prompt.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from devloop.gate.lora import _loss

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    completion = {"completion": " [TOOL_CALLS]read_file"}
    short = _loss(torch, model, tok, [{"prompt": "go", **completion}], "cpu")
    longer = _loss(torch, model, tok, [{"prompt": "go " + "zq xv " * 40 + "go", **completion}], "cpu")
    whole = _loss(
        torch,
        model,
        tok,
        [{"prompt": "", "completion": "go " + "zq xv " * 40 + "go" + completion["completion"]}],
        "cpu",
    )
    assert short == short and longer == longer  # finite
    assert abs(longer - whole) > 1e-3  # the long prompt's tokens are not in the loss
