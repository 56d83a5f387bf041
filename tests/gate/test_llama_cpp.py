"""GGUF files in llama.cpp itself (the optional `llama` extra): Gate 1 prompting a GGUF there and Gate 5
running each file it exports there, where llama-cpp-python is installed; everywhere, the one-line error
that names the extra when a config or flag asks for llama.cpp without it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from devloop.gate import llamacpp
from devloop.gate.full import FullSettings, run_full_gate
from devloop.gate.matrix import load_config
from devloop.gate.result import GateInputError
from devloop.gate.smoke import SmokeSettings, run_smoke_gate

MINI = str(Path(__file__).with_name("mini_suite.json"))
HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(
    not HAS_LLAMA_CPP,
    reason="llama-cpp-python is not installed (the optional `llama` extra, a long source build: "
    "CMAKE_ARGS=... pip install 'devloop[llama]', see the README)",
)
def test_the_exported_gguf_loads_and_generates_in_llama_cpp(tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("gguf", reason="devloop's GGUF writer needs the gguf package")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from devloop.gate.gguf_export import export

    made = export(tiny_model, tmp_path / "tiny-f32.gguf", "f32")
    reference = AutoTokenizer.from_pretrained(str(tiny_model), local_files_only=True)
    prompt = "def add(a, b):\n    return"
    run = llamacpp.run_file(made.path, reference, [prompt, '{"name": "read_file"}'], prompt, max_tokens=4)
    assert run.load_s > 0 and run.same_ids == run.texts == 2
    assert 1 <= len(run.tokens) <= 4 and run.generate_s > 0
    # The same network: llama.cpp's first greedy token is among transformers' best five for that prompt
    # (a wrong tensor layout would put it anywhere in the vocabulary).
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), local_files_only=True)
    with torch.no_grad():
        logits = model(**reference(prompt, return_tensors="pt", add_special_tokens=False)).logits[0, -1]
    assert run.tokens[0] in logits.topk(5).indices.tolist()

    # Gate 1 on the GGUF through llama.cpp: loaded and prompted there, timed, recorded as such.
    smoke = run_smoke_gate(SmokeSettings(weights=str(made.path), runtime="llama.cpp", max_tokens=4))
    assert smoke.details["runtime"] == "llama.cpp" and smoke.details["load_s"] > 0
    assert 0 <= smoke.details["new_tokens"] <= 4 and "code parses" in {c.name for c in smoke.checks}

    # Gate 5: every exported file run in llama.cpp, beside the transformers reload.
    settings = FullSettings(
        weights=str(tiny_model), suite=MINI, overall_min=0.0, minimums={"file_reading": 0.0, "tests": 0.0},
        max_tokens=2, gguf_out=str(tmp_path / "model.gguf"), quantize=["Q8_0"], gguf_score=False,
        gguf_in_llama_cpp=True,
    )  # fmt: skip
    result = run_full_gate(settings)
    checks = {c.name: c for c in result.checks}
    for kind in ("F16", "Q8_0"):
        assert checks[f"GGUF {kind} runs in llama.cpp"].ok is True, checks[f"GGUF {kind} runs in llama.cpp"]
    for file in result.details["gguf"]:
        ran = file["llama_cpp"]
        assert ran["new_tokens"] >= 1 and ran["tokens_match"]["same"] == ran["tokens_match"]["texts"] == 3


def _without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if llama-cpp-python were not installed, whether or not it is (None in sys.modules makes both
    `import llama_cpp` and find_spec report it absent)."""
    monkeypatch.setitem(sys.modules, "llama_cpp", None)


def test_asking_for_llama_cpp_without_the_extra_fails_in_one_line(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    _without_llama_cpp(monkeypatch)
    assert not llamacpp.available()
    config = tmp_path / "gates.toml"
    config.write_text('[gate0]\ntokenizer = "t"\n[gate1]\nweights = "m.gguf"\nruntime = "llama.cpp"\n')
    # The config is refused when it is read, before Gate 0 runs.
    with pytest.raises(GateInputError) as refused:
        load_config(config)
    message = str(refused.value)
    assert message.startswith(
        f"{config}: gate1.runtime: llama.cpp runtime: llama-cpp-python is not installed"
    )
    assert "pip install 'devloop[llama]'" in message and "\n" not in message
    config.write_text(f'[gate5]\nweights = "{tiny_model}"\ngguf_out = "m.gguf"\ngguf_in_llama_cpp = true\n')
    with pytest.raises(GateInputError, match=r"gate5\.gguf_in_llama_cpp: .*devloop\[llama\]"):
        load_config(config)
    with pytest.raises(GateInputError, match="^llama.cpp runtime: llama-cpp-python is not installed"):
        llamacpp.load(tmp_path / "m.gguf")

    runner = CliRunner()
    gguf = tmp_path / "m.gguf"
    smoke = runner.invoke(app, ["gate", "smoke", "--weights", str(gguf), "--runtime", "llama.cpp",
                                "--out", str(tmp_path / "out")])  # fmt: skip
    assert smoke.exit_code == 2 and len(smoke.output.strip().splitlines()) == 1
    assert "gate1.runtime: llama.cpp runtime: llama-cpp-python is not installed" in smoke.output
    full = runner.invoke(app, ["gate", "full", "--weights", str(tiny_model), "--gguf-out", str(gguf),
                               "--gguf-in-llama-cpp", "--out", str(tmp_path / "out")])  # fmt: skip
    assert full.exit_code == 2 and len(full.output.strip().splitlines()) == 1
    assert "devloop[llama]" in full.output
    assert not gguf.exists() and not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[gate1]\nweights = "m.gguf"\nruntime = "vllm"\n', "gate1.runtime: one of transformers, llama.cpp"),
        ('[gate1]\nweights = "dir"\nruntime = "llama.cpp"\n', "llama.cpp runs a .gguf file"),
        ('[gate1]\nmodel = "scripted/x"\nruntime = "llama.cpp"\n', "llama.cpp runs a .gguf file"),
        ('[gate5]\nweights = "w"\ngguf_in_llama_cpp = "yes"\n', "gate5.gguf_in_llama_cpp: true or false"),
        ('[gate5]\nweights = "w"\ngguf_in_llama_cpp = true\n', "needs gguf_out"),
    ],
)
def test_bad_llama_cpp_keys(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "gates.toml"
    config.write_text(table)
    with pytest.raises(GateInputError, match=message):
        load_config(config)


def test_cli_runtime_names_the_choices(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    done = CliRunner().invoke(
        app, ["gate", "smoke", "--weights", str(tmp_path / "m.gguf"), "--runtime", "onnx"]
    )
    assert done.exit_code == 2 and "--runtime 'onnx': must be one of transformers, llama.cpp" in done.output
    flag = CliRunner().invoke(app, ["gate", "full", "--weights", str(tmp_path), "--gguf-in-llama-cpp"])
    assert flag.exit_code == 2 and "--gguf-in-llama-cpp: needs --gguf-out" in flag.output
