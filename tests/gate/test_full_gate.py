"""Gate 5: the 40-query acceptance test through the scripted server, and on the tiny local model the
size check and the GGUF export (skipped with its reason when llama.cpp is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.gate.full import FullSettings, run_full_gate
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError
from devloop.gate.suite import load_suite
from devloop.types import ToolCall

MINI = str(Path(__file__).with_name("mini_suite.json"))
SUITE = load_suite()


def _script(tmp_path: Path, wrong: set[str]) -> Path:
    """Mistral-format replies: right for every test query except those in `wrong` (prose instead)."""
    from devloop.formats.mistral import render_mistral_call
    from devloop.gate.suite import expected_calls

    entries = []
    for query in SUITE.split("test"):
        calls: list[ToolCall] = [] if query.id in wrong else expected_calls(query)
        text = "\n".join(render_mistral_call(c) for c in calls) if calls else "I would rather explain."
        if query.id in wrong and not query.expect:
            text = render_mistral_call(ToolCall(name="git_status", arguments={}))
        entries.append({"role": "assistant", "content": text})
    path = tmp_path / "full.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_acceptance_passes_at_85_percent(tmp_path: Path) -> None:
    # 5 wrong of 40 = 87.5 %, spread so that no category drops under its 60 % minimum.
    wrong = {"direct-1", "read-1", "search-1", "git-1", "tests-1"}
    result = run_full_gate(FullSettings(model=f"scripted/{_script(tmp_path, wrong)}", max_mean_s=600))
    assert result.status == "pass", result.failures
    report = result.details["report"]
    assert (report["passed"], report["total"]) == (35, 40)
    assert {c.name for c in result.checks} == {"overall", "no category under its minimum", "speed"}


def test_acceptance_fails_overall_and_names_the_weak_category(tmp_path: Path) -> None:
    wrong = {"git-1", "git-2", "git-3", "tests-1", "read-1", "disc-1", "disc-2"}  # 33/40 = 82.5 %
    result = run_full_gate(FullSettings(model=f"scripted/{_script(tmp_path, wrong)}"))
    failures = {c.name: c.detail for c in result.failures}
    assert failures["overall"] == "33/40 = 82% (min 85%)"
    assert failures["no category under its minimum"] == "git 40% < 60%"


def test_local_weights_size_and_gguf_export(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gguf", reason="the GGUF writer and transformers' GGUF loader need the gguf package")
    monkeypatch.delenv("DEVLOOP_LLAMA_CPP", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no llama-quantize to find
    settings = FullSettings(
        weights=str(tiny_model), suite=MINI, overall_min=0.0, minimums={"file_reading": 0.0, "tests": 0.0},
        max_size_mb=50, max_tokens=2, gguf_out=str(tmp_path / "model.gguf"), quantize=["Q8_0", "Q4_K_M"],
    )  # fmt: skip
    result = run_full_gate(settings)
    checks = {c.name: c for c in result.checks}
    assert checks["size"].ok is True and 0 < result.details["size_mb"] < 50
    assert checks["GGUF F16"].ok is True and checks["GGUF Q8_0"].ok is True
    assert checks["GGUF Q4_K_M"].ok is None and "llama-quantize" in checks["GGUF Q4_K_M"].detail
    f16, q8 = result.details["gguf"]
    assert Path(f16["path"]).read_bytes()[:4] == b"GGUF" and Path(q8["path"]).name == "model-Q8_0.gguf"
    assert q8["size_mb"] < f16["size_mb"] < result.details["size_mb"]  # F32 safetensors > F16 > Q8_0
    for made in (f16, q8):
        # Reloaded through transformers' GGUF loader: the same token ids, and scored on the same queries.
        assert made["tokens_match"]["same"] == made["tokens_match"]["texts"] == 3
        assert made["score"]["total"] == 2 and checks[f"GGUF {made['type'].upper()} scores"].ok is True
    # F16 rounding does not change a tiny model's greedy replies: the export is the same network.
    replies = {f["id"]: f["reply"] for f in result.details["report"]["failures"]}
    assert replies and {f["id"]: f["reply"] for f in f16["failures"]} == replies
    # A converter named by the config writes the base file instead; its size is reported.
    fake = tmp_path / "llama.cpp"
    fake.mkdir()
    (fake / "convert_hf_to_gguf.py").write_text(
        "import sys\nout = sys.argv[sys.argv.index('--outfile') + 1]\nopen(out, 'wb').write(b'GGUF' + bytes(2**20))\n"
    )
    settings.llama_cpp, settings.quantize, settings.gguf_score = str(fake), None, False
    exported = run_full_gate(settings)
    gguf = exported.details["gguf"][0]
    assert gguf["size_mb"] == pytest.approx((2**20 + 4) / 2**20) and Path(gguf["path"]).is_file()
    assert {c.name: c.ok for c in exported.checks}["GGUF F16"] is True


def test_gguf_export_names_what_is_missing(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import shutil

    from devloop.gate import gguf_export

    other = tmp_path / "gpt2"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(gguf_export.ExportError, match="model_type 'gpt2'.*llama_cpp"):
        gguf_export.export(other, tmp_path / "x.gguf", "f16")
    with pytest.raises(gguf_export.ExportError, match="Q4_K_M.*Q8_0"):
        gguf_export.export(tiny_model, tmp_path / "x.gguf", "Q4_K_M")
    real = importlib.import_module

    def no_gguf(name: str, *args: object) -> object:
        if name == "gguf":
            raise ImportError("No module named 'gguf'")
        return real(name, *args)

    monkeypatch.setattr(gguf_export.importlib, "import_module", no_gguf)
    with pytest.raises(gguf_export.ExportError, match="^the gguf package is not installed"):
        gguf_export.export(tiny_model, tmp_path / "x.gguf", "f16")
    assert not (tmp_path / "x.gguf").exists()


def test_full_scale_lora_first_then_the_acceptance_test_on_the_fused_model(
    tiny_model: Path, tmp_path: Path
) -> None:
    """[gate5.train]: Gate 4's pipeline on the base weights, then the suite, size and report on the fused
    model; a diverging run fails the gate before any query is put to it."""
    config = tmp_path / "gates.toml"
    config.write_text(
        f'[gate5]\nweights = "{tiny_model}"\nsuite = "{MINI}"\nformat = "hermes"\noverall_min = 0.0\n'
        "max_tokens = 2\nmax_size_mb = 50\n[gate5.minimums]\nfile_reading = 0.0\ntests = 0.0\n"
        '[gate5.train]\nsteps = 3\nlearning_rate = 5e-3\neval_max_tokens = 2\nout_dir = "full-merged"\n'
    )
    decision = run_gates(load_config(config), tmp_path / "out")
    (result,) = decision.results
    assert result.status == "pass", result.failures
    names = [c.name for c in result.checks]
    assert names[:4] == ["training: training loss falls", "training: no divergence",
                         "training: fused model reloads", "overall"]  # fmt: skip
    assert "training: held-out tool calls" not in names  # the acceptance test is Gate 5's threshold
    merged = tmp_path / "full-merged"
    assert result.details["model"] == f"local/{merged}" and (merged / "config.json").is_file()
    assert (
        result.details["train"]["base"] == str(tiny_model) and len(result.details["train"]["loss_curve"]) == 3
    )
    assert result.details["train"]["format"] == "hermes" and result.details["report"]["total"] == 2
    assert result.details["size_mb"] > 0 and (merged / "model.safetensors").stat().st_size > 0
    report = (tmp_path / "out" / "decision.md").read_text()
    assert "## Gate 5 (full): loss curve" in report and (tmp_path / "out" / "gate5-loss_curve.png").is_file()
    config.write_text(config.read_text().replace("learning_rate = 5e-3", "learning_rate = 50.0"))
    diverged = run_gates(load_config(config), tmp_path / "out2").results[0]
    failed = {c.name for c in diverged.failures}
    assert failed & {"training: training loss falls", "training: no divergence"}
    assert "report" not in diverged.details  # no acceptance test on a model that did not learn


def test_gate_run_full_keeps_the_baseline(tmp_path: Path) -> None:
    _script(tmp_path, {"git-1", "git-2", "git-3"})
    config = tmp_path / "gates.toml"
    config.write_text('[gate5]\nmodel = "scripted/full.jsonl"\nformat = "mistral"\n')
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.exit_code == 1
    assert "keep the baseline" in (tmp_path / "out" / "decision.md").read_text()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('model = "scripted/x"\nformat = "json"\n', "gate5.format"),
        ('model = "scripted/x"\noverall_min = -1\n', "gate5.overall_min"),
        ('weights = "w"\nmodel = "scripted/x"\n', "exactly one of model or weights"),
        ('weights = "w"\ngguf_type = "q4_k_m"\n', "gate5.gguf_type: GGUF type 'q4_k_m'"),
        ('weights = "w"\nquantize = [8]\n', "gate5.quantize"),
        ('weights = "w"\ngguf_score = "yes"\n', "gate5.gguf_score"),
        ('weights = "w"\ngguf_per_category = 0\n', "gate5.gguf_per_category"),
        ('model = "scripted/x"\ntrain = {steps = 2}\n', "gate5.train: needs gate5.weights"),
        ('weights = "w"\ntrain = {steps = "many"}\n', "gate5.train.steps: a non-negative integer"),
        ('weights = "w"\ntrain = {weights = "v"}\n', "gate5.train.weights: the base model is gate5.weights"),
        ('weights = "w"\ntrain = {format = "native"}\n', "gate5.train.format"),
    ],
)
def test_bad_gate5_table(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "gates.toml"
    config.write_text("[gate5]\n" + table)
    with pytest.raises(GateInputError, match=message):
        load_config(config)


def test_cli_full_refuses_a_gguf_type_the_writer_lacks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    done = CliRunner().invoke(
        app,
        [
            "gate",
            "full",
            "--weights",
            str(tmp_path),
            "--gguf-out",
            str(tmp_path / "m.gguf"),
            "--gguf-type",
            "q4_k",
        ],
    )
    assert done.exit_code == 2
    assert "--gguf-type: GGUF type 'q4_k': the gguf package writes" in done.output
    assert len(done.output.strip().splitlines()) == 1 and not (tmp_path / "m.gguf").exists()


def test_cli_full_train_steps_needs_local_weights_and_a_text_format(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from devloop.cli import app

    native = CliRunner().invoke(
        app, ["gate", "full", "--weights", str(tmp_path), "--train-steps", "2", "--format", "native"]
    )
    assert (
        native.exit_code == 2
        and "--train-steps: --format must be one the model writes as text" in native.output
    )
    served = CliRunner().invoke(app, ["gate", "full", "--model", "scripted/x.jsonl", "--train-steps", "2"])
    assert served.exit_code == 2 and "needs --weights" in served.output
    assert not (tmp_path / "gate5-merged").exists()
