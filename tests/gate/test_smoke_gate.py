"""Gate 1: a tiny local model loaded from disk like real weights, and a served model via the client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError
from devloop.gate.smoke import SmokeSettings, extract_code, run_smoke_gate


def test_extract_code_takes_the_first_fence() -> None:
    assert extract_code("Here:\n```python\nx = 1\n```\nand ```py\ny\n```") == "x = 1\n"
    assert extract_code("x = 1") == "x = 1"


def test_local_tiny_model_loads_generates_and_is_graded(tiny_model: Path) -> None:
    result = run_smoke_gate(
        SmokeSettings(weights=str(tiny_model), max_tokens=8, max_load_s=600, max_peak_mb=1e6)
    )
    checks = {c.name: c for c in result.checks}
    assert checks["load time"].ok is True and checks["peak memory"].ok is True
    assert result.details["device"] == "cpu" and result.details["new_tokens"] >= 1
    # Random weights write token soup: the parse check is real, whichever way it goes, and says why.
    reply = result.details["reply"]
    assert checks["code parses"].ok is _parses_as_python(extract_code(reply))
    assert result.versions["torch"].startswith("2.13.0") and "transformers" in result.versions


def test_device_and_precision_follow_the_hardware() -> None:
    """The same gate code on a GPU: bf16 where the GPU has it, else fp16; fp32 on the CPU."""
    from types import SimpleNamespace

    import torch

    from devloop.gate.smoke import gpu_peak_mb, pick_device

    def fake(cuda: bool, bf16: bool) -> SimpleNamespace:
        gpu = SimpleNamespace(
            is_available=lambda: cuda, is_bf16_supported=lambda: bf16, max_memory_allocated=lambda: 3 * 2**30
        )
        return SimpleNamespace(
            cuda=gpu, float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16
        )

    assert pick_device(fake(cuda=False, bf16=False)) == ("cpu", torch.float32)
    assert pick_device(fake(cuda=True, bf16=True)) == ("cuda", torch.bfloat16)
    assert pick_device(fake(cuda=True, bf16=False)) == ("cuda", torch.float16)
    assert gpu_peak_mb(fake(True, True), "cuda") == 3072.0 and gpu_peak_mb(fake(True, True), "cpu") is None


def test_on_a_gpu_the_peak_memory_ceiling_is_the_gpus(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devloop.gate import smoke

    monkeypatch.setattr(smoke, "gpu_peak_mb", lambda torch, device: 5000.0)
    result = run_smoke_gate(SmokeSettings(weights=str(tiny_model), max_tokens=2, max_peak_mb=4000))
    check = {c.name: c for c in result.checks}["peak memory"]
    assert check.ok is False and check.detail == "5000 MiB (GPU peak)"
    assert result.details["peak_gpu_mb"] == 5000.0 and result.details["dtype"] == "float32"


def _parses_as_python(code: str) -> bool:
    import ast

    if not code.strip():
        return False
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _script(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "smoke.jsonl"
    path.write_text(json.dumps({"role": "assistant", "content": content}) + "\n")
    return path


def test_served_model_code_parses_or_not(tmp_path: Path) -> None:
    fine = _script(tmp_path, "Sure:\n```python\ndef add(a, b):\n    return a + b\n```")
    good = run_smoke_gate(SmokeSettings(model=f"scripted/{fine}"))
    assert good.status == "pass", good.failures
    broken = _script(tmp_path, "```python\ndef add(a, b)\n    return\n```")
    bad = run_smoke_gate(SmokeSettings(model=f"scripted/{broken}"))
    assert bad.status == "fail" and "SyntaxError line 1" in bad.failures[0].detail


def test_gate_run_smoke_failure_stops_before_latency(tmp_path: Path) -> None:
    _script(tmp_path, "I cannot write code.")
    config = tmp_path / "gates.toml"
    config.write_text('[gate1]\nmodel = "scripted/smoke.jsonl"\n[gate2]\nmodel = "scripted/smoke.jsonl"\n')
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.exit_code == 1 and [r.gate for r in decision.results] == [1] and decision.skipped == [2]
    assert not (tmp_path / "out" / "gate2-latency.json").exists()


def test_bad_smoke_input(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="exactly one of"):
        run_smoke_gate(SmokeSettings())
    with pytest.raises(GateInputError, match="no such model directory"):
        run_smoke_gate(SmokeSettings(weights=str(tmp_path / "none")))
    config = tmp_path / "gates.toml"
    config.write_text('[gate1]\nmodel = "openai/x"\nweights = "w"\n')
    with pytest.raises(GateInputError, match="gate1: give exactly one"):
        load_config(config)


def test_cli_smoke_on_served_model(tmp_path: Path) -> None:
    script = _script(tmp_path, "```python\nprint('hi')\n```")
    done = CliRunner().invoke(app, ["gate", "smoke", "--model", f"scripted/{script}", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "ok   code parses" in done.output and (tmp_path / "gate1-smoke.json").is_file()


def test_cpu_threads_follow_the_idle_cores_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from devloop.gate import smoke

    monkeypatch.delenv("DEVLOOP_TORCH_THREADS", raising=False)
    monkeypatch.setattr(smoke.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(smoke.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert smoke.cpu_threads() == 1  # every core busy elsewhere: one thread, no barrier spinning
    monkeypatch.setattr(smoke.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    assert smoke.cpu_threads() == 3
    monkeypatch.setattr(smoke.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert smoke.cpu_threads() == 4
    monkeypatch.setenv("DEVLOOP_TORCH_THREADS", "2")
    assert smoke.cpu_threads() == 2
    monkeypatch.setenv("DEVLOOP_TORCH_THREADS", "many")
    with pytest.raises(GateInputError, match="DEVLOOP_TORCH_THREADS"):
        smoke.cpu_threads()
