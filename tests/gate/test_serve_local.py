"""examples/serve_local.py: local weights behind a minimal OpenAI-compatible chat endpoint."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest

from devloop.types import Completion, SamplingParams, Usage

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "serve_local.py"


class FakeModel:
    """What the handler uses of a LocalModel: a tokenizer, `prompt` and `complete`."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[dict[str, Any]], int | None]] = []

    def tokenizer(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(range(len(text.split())))}

    def prompt(self, messages: list[dict[str, Any]], tools: Any) -> str:
        return " ".join(str(m.get("content")) for m in messages)

    def complete(self, messages: list[dict[str, Any]], tools: Any, params: SamplingParams) -> Completion:
        self.seen.append((messages, params.max_tokens))
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "bash", "arguments": '{"command": "ls"}'},
        }
        return Completion("thinking", [call] if tools else [], Usage(3, 2))


def _post(port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serves_chat_completions_with_tool_calls_and_refuses_bad_requests() -> None:
    spec = importlib.util.spec_from_file_location("serve_local", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = FakeModel()
    server = HTTPServer(("127.0.0.1", 0), mod.make_handler(model, max_tokens=50, max_prompt_tokens=6))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        messages = [{"role": "user", "content": "list the files"}]
        tools = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
        code, reply = _post(
            port, json.dumps({"messages": messages, "tools": tools, "max_tokens": 999}).encode()
        )
        assert code == 200
        message = reply["choices"][0]["message"]
        assert message["tool_calls"][0]["function"]["name"] == "bash"
        assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        assert model.seen[-1][1] == 50  # the server's cap wins over the request's
        assert _post(port, b"not json")[0] == 400
        assert _post(port, json.dumps({"messages": "x"}).encode())[0] == 400
        long = [{"role": "user", "content": "one two three four five six seven"}]
        code, reply = _post(port, json.dumps({"messages": long}).encode())
        assert code == 400 and "over the context" in reply["error"]["message"]
        assert len(model.seen) == 1  # refused requests never reach the model
    finally:
        server.shutdown()
        server.server_close()


def test_script_has_no_import_of_torch_at_module_level() -> None:
    text = SCRIPT.read_text()
    imports = [
        ln for ln in text.split("def make_handler", 1)[0].splitlines() if ln.startswith(("import", "from"))
    ]
    assert imports and not any("devloop.gate.local" in ln or "torch" in ln for ln in imports)
    with pytest.raises(SystemExit):  # argparse: the weights argument is required
        import runpy
        import sys

        argv = sys.argv
        sys.argv = [str(SCRIPT)]
        try:
            runpy.run_path(str(SCRIPT), run_name="__main__")
        finally:
            sys.argv = argv
