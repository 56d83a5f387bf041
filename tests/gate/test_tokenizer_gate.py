"""Gate 0 on the real tokenizers mistral-common ships, and on Hugging Face tokenizer.json files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mistral_common import __file__ as _mistral_init

from devloop.gate.result import GateInputError
from devloop.gate.tokenizer import MISTRAL_REQUIRED, run_tokenizer_gate

DATA = Path(_mistral_init).parent / "data"
WITH_TOOLS = sorted(
    p for p in DATA.iterdir() if p.name != "tokenizer.model.v1" and not p.name.endswith(".py")
)


def test_shipped_tokenizers_are_found() -> None:
    names = {p.name for p in WITH_TOOLS}
    assert {"tekken_240911.json", "mistral_instruct_tokenizer_241114.model.v7"} <= names


@pytest.mark.parametrize("path", WITH_TOOLS, ids=lambda p: p.name)
def test_mistral_tokenizers_pass(path: Path) -> None:
    result = run_tokenizer_gate(path, "mistral")
    assert result.status == "pass", result.failures
    checks = {c.name: c for c in result.checks}
    for text in MISTRAL_REQUIRED:
        assert checks[f"delimiter {text}"].ok is True
    ids = [result.details["delimiter_ids"][t] for t in MISTRAL_REQUIRED]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids)
    # No shipped Mistral tokenizer has [/TOOL_CALLS]: reported as absent, never as a failure.
    closing = checks["delimiter [/TOOL_CALLS]"]
    assert closing.ok is None and "</s>" in closing.detail
    trip = result.details["round_trip"]
    assert "[TOOL_CALLS]" in trip["rendered"] and trip["parsed"] == [
        ["read_file", {"path": "src/app.py", "limit": 40}]
    ]


def test_v1_tokenizer_without_tool_tokens_fails() -> None:
    result = run_tokenizer_gate(DATA / "tokenizer.model.v1", "mistral")
    assert result.status == "fail"
    failed = {c.name for c in result.failures}
    assert "delimiter [TOOL_CALLS]" in failed and "round trip" in failed
    assert "delimiter [/TOOL_CALLS]" not in failed


def _hf_tokenizer(directory: Path, specials: list[str]) -> Path:
    """A small real BPE tokenizer trained here, with `specials` as single added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = ['{"name": "read_file", "arguments": {"path": "src/app.py", "limit": 40}}', "hello world"] * 20
    tok.train_from_iterator(corpus, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    return directory


def test_hermes_tokenizer_json_passes_and_one_without_the_pair_fails(tmp_path: Path) -> None:
    good = _hf_tokenizer(tmp_path / "good", ["<tool_call>", "</tool_call>"])
    result = run_tokenizer_gate(good, "hermes")
    assert result.status == "pass", result.failures
    assert result.details["round_trip"]["parsed"] == [["read_file", {"path": "src/app.py", "limit": 40}]]
    bad = run_tokenizer_gate(_hf_tokenizer(tmp_path / "bad", []), "hermes")
    assert {c.name for c in bad.failures} >= {"delimiter <tool_call>", "delimiter </tool_call>"}


def test_mistral_family_on_a_tokenizer_json(tmp_path: Path) -> None:
    specials = [
        "[TOOL_CALLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[ARGS]",
    ]
    result = run_tokenizer_gate(_hf_tokenizer(tmp_path / "m", specials), "mistral")
    assert result.status == "pass", result.failures
    checks = {c.name: c.ok for c in result.checks}
    assert checks["delimiter [ARGS]"] is True and checks["delimiter [CALL_ID]"] is None


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="tokenizer not found"):
        run_tokenizer_gate(tmp_path / "missing")
    with pytest.raises(GateInputError, match="no tekken.json"):
        run_tokenizer_gate(tmp_path)
    with pytest.raises(GateInputError, match="not shipped with mistral-common"):
        run_tokenizer_gate(Path("mistral-common:tekken_999.json"))
    junk = tmp_path / "tekken.json"
    junk.write_text("{not json")
    with pytest.raises(GateInputError, match="tekken.json"):
        run_tokenizer_gate(junk)


def test_cli_tokenizer_subcommand_writes_json_and_exits_by_verdict(tmp_path: Path) -> None:
    # The one subprocess test: the installed entry point, exit codes and the files it writes.
    def gate(path: Path, out: Path) -> subprocess.CompletedProcess[str]:
        cmd = [
            sys.executable,
            "-m",
            "devloop",
            "gate",
            "tokenizer",
            "--tokenizer",
            str(path),
            "--out",
            str(out),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    ok = gate(DATA / "mistral_instruct_tokenizer_241114.model.v7", tmp_path / "ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads((tmp_path / "ok" / "gate0-tokenizer.json").read_text())
    assert data["status"] == "pass" and data["versions"]["mistral-common"]
    assert "n/a  delimiter [/TOOL_CALLS]" in ok.stdout and "GO" in ok.stdout
    assert "# Gate decision: GO" in (tmp_path / "ok" / "decision.md").read_text()
    stop = gate(DATA / "tokenizer.model.v1", tmp_path / "stop")
    assert stop.returncode == 1 and "STOP" in stop.stdout
    missing = gate(tmp_path / "nope", tmp_path / "x")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "tokenizer not found" in missing.stderr


# A Mistral v11-style template: a call is `[TOOL_CALLS]name[ARGS]{json}` and ends with `</s>`.
MISTRAL_TEMPLATE = (
    "{%- if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' -%}[INST]{{ m.content }}[/INST]"
    "{%- elif m.role == 'assistant' and m.tool_calls -%}"
    "{%- for c in m.tool_calls -%}[TOOL_CALLS]{{ c.function.name }}[ARGS]{{ c.function.arguments | tojson }}"
    "{%- endfor -%}</s>"
    "{%- elif m.role == 'assistant' -%}{{ m.content }}</s>{%- endif -%}"
    "{%- endfor -%}"
)


def test_round_trip_through_the_models_own_chat_template(tiny_model: Path, tmp_path: Path) -> None:
    """The tiny Mistral-architecture model with a chat template saved as transformers saves it today
    (chat_template.jinja, not inside tokenizer_config.json): Gate 0 renders the call with it."""
    import shutil

    from transformers import AutoTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    tok = AutoTokenizer.from_pretrained(model)
    tok.chat_template = MISTRAL_TEMPLATE
    tok.save_pretrained(model)
    assert "chat_template" not in json.loads((model / "tokenizer_config.json").read_text())
    result = run_tokenizer_gate(model, "mistral")
    assert result.status == "pass", result.failures
    trip = result.details["round_trip"]
    assert trip["via"] == "chat template (transformers)"
    assert trip["rendered"].startswith("[TOOL_CALLS]read_file[ARGS]") and trip["rendered"].endswith("</s>")
    assert trip["parsed"] == [["read_file", {"path": "src/app.py", "limit": 40}]]
    # A template that drops tool calls (a plain chat template) fails the round trip, and one that raises
    # on them fails it with the template's own message, in one line.
    tok.chat_template = "{% for m in messages %}{{ m.content }}</s>{% endfor %}"
    tok.save_pretrained(model)
    dropped = {c.name: c for c in run_tokenizer_gate(model, "mistral").checks}["round trip"]
    assert dropped.ok is False and dropped.detail.startswith("chat template (transformers): parser rejected")
    tok.chat_template = "{{ raise_exception('tool calls are not supported') }}"
    tok.save_pretrained(model)
    raised = {c.name: c for c in run_tokenizer_gate(model, "mistral").checks}["round trip"]
    assert raised.ok is False and raised.detail.endswith(
        "cannot render a tool call: tool calls are not supported"
    )
