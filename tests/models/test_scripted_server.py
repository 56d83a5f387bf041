"""The scripted server, spoken to with plain HTTP (no SDK) so its wire format is what is checked."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devloop.models.scripted_server import EXHAUSTED, ScriptedServer, load_script, main


def post(url: str, body: dict[str, Any] | bytes) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        f"{url}/chat/completions",
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def test_reply_fills_tool_calls_and_estimates_usage() -> None:
    entry = {"content": None, "tool_calls": [{"function": {"name": "bash", "arguments": {"command": "ls"}}}]}
    with ScriptedServer([entry]) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        status, _, raw = post(server.url, REQUEST)
        assert server.requests == [REQUEST]
        assert server.remaining == 0
    data = json.loads(raw)
    assert status == 200
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert json.loads(call["function"]["arguments"]) == {"command": "ls"}
    assert data["usage"]["prompt_tokens"] == len(json.dumps(REQUEST).encode()) // 4  # the body's bytes
    assert data["usage"]["completion_tokens"] > 0


def test_explicit_usage_and_exhaustion() -> None:
    with ScriptedServer(
        [{"role": "assistant", "content": "hi", "usage": {"prompt_tokens": 7, "completion_tokens": 3}}]
    ) as server:
        first = json.loads(post(server.url, REQUEST)[2])
        status, _, raw = post(server.url, REQUEST)
        assert len(server.requests) == 2
    assert first["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert first["choices"][0]["finish_reason"] == "stop"
    assert status == 200
    message = json.loads(raw)["choices"][0]["message"]
    assert message["content"] == EXHAUSTED and "tool_calls" not in message


def test_status_faults_carry_openai_error_body_and_retry_after() -> None:
    script = [
        {"fault": {"status": 429, "retry_after": 0.2}},
        {"fault": {"status": 400, "code": "context_length_exceeded", "message": "too long"}},
    ]
    with ScriptedServer(script) as server:
        status, headers, raw = post(server.url, REQUEST)
        assert status == 429 and headers["Retry-After"] == "0.2"
        status, _, raw = post(server.url, REQUEST)
    assert status == 400
    assert json.loads(raw)["error"] == {
        "message": "too long",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length_exceeded",
    }


def test_models_endpoint_and_unknown_route() -> None:
    with ScriptedServer([], model_name="tiny") as server:
        with urllib.request.urlopen(f"{server.url}/models", timeout=5) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "tiny"
        status, _, _ = post(server.url.removesuffix("/v1"), REQUEST)
    assert status == 404


def test_bad_request_body_is_400_and_not_recorded() -> None:
    with ScriptedServer([{"content": "x"}]) as server:
        status, _, raw = post(server.url, b"[1, 2")
        assert status == 400 and "JSON object" in json.loads(raw)["error"]["message"]
        assert server.requests == [] and server.remaining == 1


def test_invalid_entry_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match=r"script entry 2: .*kind"):
        ScriptedServer([{"content": "ok"}, {"fault": {"kind": "explode"}}])


def test_load_script_reads_jsonl_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"content": "a"}\n\n   \n{"fault": {"status": 500}}\n')
    assert load_script(path) == [{"content": "a"}, {"fault": {"status": 500}}]


def test_latency_holds_the_reply_that_long_and_a_closing_server_stops_waiting() -> None:
    with ScriptedServer([{"content": "slow", "latency": 0.4}, {"content": "quick"}]) as server:
        started = time.monotonic()
        slow = json.loads(post(server.url, REQUEST)[2])
        took = time.monotonic() - started
        started = time.monotonic()
        quick = json.loads(post(server.url, REQUEST)[2])
        quick_took = time.monotonic() - started
    assert slow["choices"][0]["message"]["content"] == "slow" and took >= 0.4
    assert quick["choices"][0]["message"]["content"] == "quick" and quick_took < took
    # A request waiting out a long latency is let go when the server closes, not held for the latency.
    server = ScriptedServer([{"content": "never", "latency": 60}])
    waiting = threading.Thread(target=post, args=(server.url, REQUEST), daemon=True)
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.close()
    waiting.join(10)
    assert not waiting.is_alive() and time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('{"content": "a"}\n{"content": \n', 2, "invalid JSON"),
        ("\n\n[1, 2]\n", 3, "expected a JSON object"),
        ('{"role": "user", "content": "x"}\n', 1, "role must be 'assistant'"),
        ('{"fault": {"status": 200}}\n', 1, "400-599"),
        ('{"tool_calls": [{"name": "bash"}]}\n', 1, r"tool_calls\[0\]"),
        ('{"usage": {}}\n', 1, "needs 'content' or 'tool_calls'"),
        ('{"content": "a"}\n{"content": "b", "latency": "1s"}\n', 2, "'latency' must be a number"),
        ('{"content": "a", "latency": -1}\n', 1, "from 0 to 3600"),
    ],
)
def test_load_script_errors_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:{line}: .*{problem}") as err:
        load_script(path)
    assert "\n" not in str(err.value)


def test_load_script_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.jsonl: cannot read script"):
        load_script(tmp_path / "nope.jsonl")


def test_main_reports_bad_script_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("{oops\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:1: invalid JSON: ") and err.count("\n") == 1


def test_connection_kept_alive_until_a_fault_closes_it() -> None:
    script = [{"content": "a"}, {"fault": {"status": 500}}, {"content": "b"}]
    with ScriptedServer(script) as server:
        conn = http.client.HTTPConnection("127.0.0.1", int(server.url.split(":")[2].split("/")[0]), timeout=5)
        statuses, sockets = [], []
        for _ in script:
            conn.request("POST", "/v1/chat/completions", json.dumps(REQUEST))
            resp = conn.getresponse()
            resp.read()
            statuses.append((resp.status, resp.getheader("Connection")))
            sockets.append(conn.sock)
        conn.close()
    assert statuses == [(200, None), (500, "close"), (200, None)]
    # the first reply left the socket open for the second request; the fault's reply closed it
    assert sockets[0] is not None and sockets[1] is None


def test_keep_bodies_off_records_only_sizes() -> None:
    with ScriptedServer([{"content": "a"}, {"content": "b"}], keep_bodies=False) as server:
        raw = post(server.url, REQUEST)[2]
        post(server.url, {**REQUEST, "messages": REQUEST["messages"] * 3})
        assert server.requests == [] and server.request_headers == []
        one = len(json.dumps(REQUEST).encode())
        assert server.request_sizes[0] == one and server.request_sizes[1] > one
        assert server.remaining == 0
        assert post(server.url, b"[1, 2]")[0] == 400  # still only objects
    assert json.loads(raw)["model"] == "m"  # a body's leading model is echoed without decoding it


def test_close_ends_the_accept_loop_and_frees_the_port_while_a_connection_is_open() -> None:
    server = ScriptedServer([{"content": "a"}, {"content": "b"}])
    port = int(server.url.split(":")[2].split("/")[0])
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("POST", "/v1/chat/completions", json.dumps(REQUEST))
    assert idle.getresponse().read()  # a kept-alive connection stays open across the close
    server.close()
    server.close()  # twice is fine
    assert not server._thread.is_alive()  # the wake reached the loop (join would otherwise give up at 5 s)
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/v1/models")
    idle.close()
