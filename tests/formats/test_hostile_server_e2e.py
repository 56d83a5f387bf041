"""A whole run against an HTTP server whose replies are garbage: every one becomes a format-error
observation the model sees in its next request, and the run goes on (never `runtime_error`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.demo import demo_issue, make_demo_repo
from devloop.session import run_agent
from devloop.trajectory import read_trajectory


def body(message: dict[str, Any]) -> str:
    """The server's reply as JSON text; SURROGATE becomes the escape of a lone surrogate, which a JSON
    decoder accepts but json.dumps never writes."""
    reply = {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 5}}  # fmt: skip
    return json.dumps(reply).replace("SURROGATE", "\\ud800")


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


XML_FINISH = "<function=finish><parameter=message>done</parameter></function>"
FINISH = body({"content": "", "tool_calls": [call("finish", json.dumps({"message": "done"}))]})
# What a broken or hostile server could send.
NATIVE_GARBAGE = [
    body({"content": "hi SURROGATE", "tool_calls": {"not": "a list"}}),
    body({"content": None, "tool_calls": 5}),
    body({"content": None, "tool_calls": [{"id": "x", "function": ["not", "an", "object"]}]}),
    body({"content": None, "tool_calls": [call("execute_bash", "[" * 50_000 + "]" * 50_000)]}),
    body({"content": None, "tool_calls": [call("execute_bash", '{"command": "echo \\ud800"}')]}),
    body({"content": [{"type": "text", "text": "parts"}], "tool_calls": [call("no_such_tool", "{}")]}),
]
XML_GARBAGE = [
    body({"content": "<function=execute_bash><parameter=command>echo SURROGATE</parameter></function>"}),
    body({"content": "<function=str_replace_editor><parameter=view_range>" + "[" * 50_000}),
    body({"content": "<function=think>" + "<parameter=p>v</parameter>x" * 5000}),
    body({"content": 12}),
]


class HostileServer:
    """Answers each chat-completion request with the next raw body; records what the client sent."""

    def __init__(self, bodies: list[str]):
        self.bodies = list(bodies)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                server.requests.append(json.loads(self.rfile.read(length)))
                index = min(len(server.requests), len(server.bodies)) - 1
                data = server.bodies[index].encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    yield make_demo_repo(tmp_path / "statkit")


@pytest.mark.parametrize(("tool_format", "garbage"), [("native", NATIVE_GARBAGE), ("xml", XML_GARBAGE)])
def test_garbage_replies_become_format_errors_and_the_run_goes_on(tool_format, garbage, repo, tmp_path):
    finish = FINISH if tool_format == "native" else body({"content": XML_FINISH})
    with HostileServer([*garbage, finish]) as server:
        settings = load_settings(model="openai/test", base_url=server.url, tool_format=tool_format,
                                 max_format_errors=len(garbage) + 1, max_retries=0, sandbox="none")  # fmt: skip
        result = run_agent(repo, demo_issue(), settings, tmp_path / "out")
    assert result.exit_status == "finished", result.reason
    steps = [e for e in read_trajectory(tmp_path / "out" / "trajectory.jsonl") if e["type"] == "step"]
    errors = [step["format_error"] for step in steps]
    assert len(steps) == len(garbage) + 1 and all(errors[:-1]) and errors[-1] is None, errors
    for error, request in zip(errors[:-1], server.requests[1:], strict=True):
        sent = json.dumps(request["messages"][-2:])  # the garbage's echo and its error observation
        assert json.dumps(error)[1:40] in sent, (error, sent[:300])
    if tool_format == "native":  # the trajectory keeps the reply's text exactly, surrogate and all
        assert steps[0]["completion"]["content"] == "hi \ud800"
    print(f"\n{tool_format}: " + "\n  ".join(e[:100] for e in errors[:-1]))


def test_a_run_of_only_garbage_ends_as_format_errors(repo, tmp_path):
    with HostileServer(NATIVE_GARBAGE[:3]) as server:
        settings = load_settings(model="openai/test", base_url=server.url, max_format_errors=3, max_retries=0,
                                 sandbox="none")  # fmt: skip
        result = run_agent(repo, demo_issue(), settings, tmp_path / "out")
    assert result.exit_status == "format_errors", result.reason
    assert "tool_calls must be a list" in result.reason or "malformed" in result.reason


def test_reply_envelopes_a_server_should_never_send_are_retried_not_crashes() -> None:
    from devloop.models.openai_compat import OpenAICompatModel, _Transient

    parse = OpenAICompatModel._parse
    for body in ({"choices": {"0": {}}}, {"choices": "x"}, {"choices": [5]}):
        with pytest.raises(_Transient):
            parse(None, body)  # type: ignore[arg-type]
    done = parse(
        None,
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": 7}],  # type: ignore[arg-type]
            "usage": {"prompt_tokens": "many", "completion_tokens": float("nan")},
        },
    )
    assert done.content == "hi" and done.usage.prompt_tokens == 0 and done.usage.completion_tokens == 0
    assert done.finish_reason is None
    assert parse(None, {"choices": [{"message": {}}], "usage": [1, 2]}).usage.prompt_tokens == 0  # type: ignore[arg-type]
