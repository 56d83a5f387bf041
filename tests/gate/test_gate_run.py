"""`gate run`: the config file, the decision matrix, --from/--to, the JSON files and the markdown report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mistral_common import __file__ as _mistral_init
from typer.testing import CliRunner

from devloop.cli import app
from devloop.gate.matrix import DEFAULT_MATRIX, GateConfig, decide, load_config, run_gates
from devloop.gate.result import Check, GateInputError, GateResult

DATA = Path(_mistral_init).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def _result(gate: int, ok: bool) -> GateResult:
    return GateResult(gate=gate, name=f"g{gate}", checks=[Check("c", ok, "why" if not ok else "")])


@pytest.mark.parametrize(
    ("outcomes", "code", "ran"),
    [
        ({0: True, 2: True, 3: True}, 0, [0, 2, 3]),
        ({0: False, 2: True, 3: True}, 1, [0]),  # tokenizer fails: STOP, later gates not run
        ({0: True, 2: False, 3: True}, 3, [0, 2, 3]),  # latency: soft no-go, continue
        ({0: True, 2: True, 3: False}, 3, [0, 2, 3]),  # tools: caution
        ({0: True, 3: False, 4: False}, 1, [0, 3, 4]),  # caution, then the LoRA fails: STOP
    ],
)
def test_default_matrix_decides(tmp_path: Path, outcomes: dict[int, bool], code: int, ran: list[int]) -> None:
    config = GateConfig(source=tmp_path / "gates.toml", gates={n: {} for n in outcomes})
    decision = run_gates(config, tmp_path, runner=lambda _c, n: _result(n, outcomes[n]))
    assert decision.exit_code == code and [r.gate for r in decision.results] == ran
    written = sorted(p.name for p in tmp_path.glob("gate*.json"))
    assert written == [f"gate{n}-g{n}.json" for n in ran]
    report = (tmp_path / "decision.md").read_text()
    assert f"Exit code {code}" in report
    for n in set(outcomes) - set(ran):
        assert f"| {n} | " in report and "not run" in report
    for result in decision.results:  # each gate's own wall time, in its JSON and the table
        took = result.details["gate_s"]
        assert took >= 0 and f"| {result.gate} | g{result.gate} | {result.status} |" in report
        assert (
            json.loads((tmp_path / f"gate{result.gate}-g{result.gate}.json").read_text())["details"]["gate_s"]
            == took
        )


def test_matrix_override_from_config(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text('[decision]\n2 = "stop"\n0 = "caution"\n')
    config = load_config(path)
    assert (
        config.matrix[2] == "stop" and config.matrix[0] == "caution" and config.matrix[4] == DEFAULT_MATRIX[4]
    )
    decision = decide([_result(0, False), _result(2, True)], config.matrix, [0, 2])
    assert decision.exit_code == 3 and "proceed with caution" in decision.notes[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[decision]\n9 = 'stop'\n", "decision.9: gate numbers are 0..5"),
        ("[decision]\n1 = 'maybe'\n", "decision.1: 'maybe' is not one of"),
        ("[gate0]\nfamily = 'mistral'\n", "gate0.tokenizer: a path"),
        ("[gate0]\ntokenizer = 'x'\nfamily = 'llama'\n", "gate0.family"),
        ("[gate0]\ntokenizer = 'x'\ncolour = 1\n", "unknown key 'colour'"),
        ("[gate3]\nmodel = 'scripted/x'\nformats = 1\n", "gate3.formats: a non-empty list"),
        ("[gate4]\nsteps = 3\n", "gate4.weights: a path"),
        ("[gaet0]\n", "unknown key 'gaet0'"),
        ("[gate0\n", "gates.toml"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(text)
    with pytest.raises(
        GateInputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        load_config(path)


def test_cli_run_from_to_and_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(f"[gate0]\ntokenizer = {str(DATA / 'tokenizer.model.v1')!r}\n")
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["gate", "run", "--config", str(path), "--out", str(out)])
    assert done.exit_code == 1, done.output
    assert (
        "STOP" in done.output and json.loads((out / "gate0-tokenizer.json").read_text())["status"] == "fail"
    )
    assert "# Gate decision: STOP" in (out / "decision.md").read_text()
    empty = CliRunner().invoke(app, ["gate", "run", "--config", str(path), "--from", "1", "--out", str(out)])
    assert empty.exit_code == 2 and "no configured gate in 1..5" in empty.output
    backwards = CliRunner().invoke(app, ["gate", "run", "--config", str(path), "--from", "3", "--to", "1"])
    assert backwards.exit_code == 2 and "--from must not exceed --to" in backwards.output


def test_example_config_runs_on_a_shipped_tokenizer(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "gates.toml")
    assert config.matrix == DEFAULT_MATRIX and set(config.gates) == {0}
    assert config.gates[0]["tokenizer"] == "mistral-common:tekken_240911.json"
    decision = run_gates(config, tmp_path)
    assert decision.exit_code == 0 and decision.results[0].details["tokenizer"].endswith("tekken_240911.json")


@pytest.mark.parametrize("name", ["smollm2.toml", "smollm2-quick.toml"])
def test_the_smollm2_example_configs_parse_as_documented(name: str) -> None:
    """The README's example runs every gate: its configs must stay valid as the gates' keys change."""
    config = load_config(ROOT / "examples" / "gates" / name)
    assert sorted(config.gates) == [0, 1, 2, 3, 4, 5]
    assert config.matrix == {**DEFAULT_MATRIX, 0: "caution"}  # SmolLM2 has no single-token <tool_call>
    assert config.gates[5]["weights"] == config.gates[4]["out_dir"]  # Gate 5 tests Gate 4's fused model


def test_a_run_loads_local_weights_once_and_reuses_them(tiny_model: Path, tmp_path: Path) -> None:
    from devloop.gate import smoke

    loads: list[Path] = []
    real = smoke._load_local

    def counting(directory: Path) -> tuple[object, object, str]:
        loads.append(directory)
        return real(directory)

    mini = Path(__file__).with_name("mini_suite.json")
    config_path = tmp_path / "gates.toml"
    config_path.write_text(
        f'[gate1]\nweights = "{tiny_model}"\nmax_tokens = 2\n'
        f'[gate2]\nweights = "{tiny_model}"\nprompts = ["hi"]\nmax_tokens = 2\n'
        f'[gate3]\nweights = "{tiny_model}"\nsuite = "{mini}"\nformats = ["hermes"]\nmax_tokens = 2\n'
        '[decision]\n1 = "caution"\n3 = "caution"\n',
        "utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smoke, "_load_local", counting)
        decision = run_gates(load_config(config_path), tmp_path / "out")
    assert [r.gate for r in decision.results] == [1, 2, 3]
    assert loads == [tiny_model]  # three gates, one load
    assert decision.weights is not None and (decision.weights.loads, decision.weights.reuses) == (1, 2)
    first_load = decision.results[0].details["load_s"]
    assert decision.weights.saved_s == pytest.approx(2 * first_load, rel=0.05, abs=0.05)
    assert "loaded 1 time(s), reused 2 time(s)" in (tmp_path / "out" / "decision.md").read_text()
    # Outside a run, each call loads (a gate subcommand has nothing to share with).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(smoke, "_load_local", counting)
        smoke.load_local(tiny_model)
    assert len(loads) == 2
