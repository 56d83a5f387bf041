"""deploy/: the compose file parses, and the vLLM flags are the ones devloop's formats need."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from devloop.cli import app
from devloop.formats.registry import FORMAT_NAMES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_compose_serves_devstral_with_the_mistral_tool_parser() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    vllm, devloop = compose["services"]["vllm"], compose["services"]["devloop"]
    command = [str(c) for c in vllm["command"]]
    model = _flag(command, "--model")
    assert model is not None and "Devstral-Small" in model
    # One variable switches the model, for the server and the eval alike (compose's ${VAR:-default}).
    assert model == "${VLLM_MODEL:-mistralai/Devstral-Small-2507}"
    # Devstral writes [TOOL_CALLS]name[ARGS]{...}: vLLM's mistral parser turns that into tool_calls.
    assert _flag(command, "--tool-call-parser") == "mistral" and "--enable-auto-tool-choice" in command
    assert _flag(command, "--tokenizer-mode") == "mistral"
    port = _flag(command, "--port")
    eval_command = [str(c) for c in devloop["command"]]
    assert eval_command[:2] == ["devloop", "eval"]
    assert _flag(eval_command, "--base-url") == f"http://vllm:{port}/v1"
    assert _flag(eval_command, "--model") == f"openai/{model}"
    assert _flag(eval_command, "--tool-format") in FORMAT_NAMES
    assert devloop["depends_on"]["vllm"]["condition"] == "service_healthy"
    # The eval's flags are ones `devloop eval` accepts.
    help_text = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).output
    for flag in (f for f in eval_command if f.startswith("--")):
        assert flag in help_text, flag


def test_cpu_recipe_uses_llama_cpp_server_with_tool_calls() -> None:
    script = (DEPLOY / "llama-cpp-cpu.sh").read_text()
    assert "llama-server" in script and "--jinja" in script and "-DGGML_NATIVE=OFF" in script
    assert "--base-url http://127.0.0.1:8080/v1" in script and "devloop gate tools" in script
