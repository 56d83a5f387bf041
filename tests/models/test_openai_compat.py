"""OpenAICompatModel against the real scripted server: replies, params sent, and every fault kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from devloop.models.base import ModelError
from devloop.models.openai_compat import OpenAICompatModel, parse_retry_after
from devloop.models.scripted_server import ScriptedServer
from devloop.types import SamplingParams

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "list files"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": "run",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        },
    }
]
OK = {"role": "assistant", "content": "done"}


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(script, **model_kwargs) -> (server, model); both closed after the test."""
    opened: list[Any] = []

    def start(script: list[dict[str, Any]], **kwargs: Any) -> tuple[ScriptedServer, OpenAICompatModel]:
        server = ScriptedServer(script)
        kwargs = {"max_retries": 3, "timeout": 5.0, "backoff_base": 0.01, "backoff_cap": 0.05} | kwargs
        model = OpenAICompatModel("test-model", server.url, "sk-test", **kwargs)
        opened.extend([model, server])
        return server, model

    yield start
    for thing in opened:
        thing.close()


def complete(
    model: OpenAICompatModel, tools: list[dict[str, Any]] | None = None, params: SamplingParams | None = None
) -> Any:
    return model.complete(MESSAGES, tools, params or SamplingParams())


def test_reply_with_tool_calls_and_usage(serve: Any) -> None:
    call = {
        "id": "call_a",
        "type": "function",
        "function": {"name": "bash", "arguments": '{"command": "ls"}'},
    }
    server, model = serve(
        [
            {
                "role": "assistant",
                "content": "let me look",
                "tool_calls": [call],
                "usage": {"prompt_tokens": 120, "completion_tokens": 15},
            }
        ]
    )
    result = complete(model, TOOLS)
    assert result.content == "let me look"
    assert result.tool_calls == [call]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (120, 15)
    assert result.finish_reason == "tool_calls"
    assert result.retries == 0 and result.latency_s > 0
    sent = server.requests[0]
    assert sent["model"] == "test-model" and sent["messages"] == MESSAGES
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto"


def test_sampling_params_sent_and_none_values_omitted(serve: Any) -> None:
    server, model = serve([OK, OK])
    complete(model, None, SamplingParams(temperature=0.7, top_p=0.9, max_tokens=256, seed=42))
    complete(model, None, SamplingParams(temperature=0.0))
    full, sparse = server.requests
    assert (full["temperature"], full["top_p"], full["max_tokens"], full["seed"]) == (0.7, 0.9, 256, 42)
    assert sparse["temperature"] == 0.0
    assert not {"top_p", "max_tokens", "seed", "tools", "tool_choice"} & sparse.keys()


def test_extra_headers_are_sent(serve: Any) -> None:
    server, model = serve([OK], extra_headers={"X-Trace": "abc"})
    complete(model)
    headers = {k.lower(): v for k, v in server.request_headers[0].items()}
    assert headers["x-trace"] == "abc"
    assert headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503},
        {"kind": "reset"},
        {"kind": "malformed"},
        {"kind": "empty_choices"},
    ],
)
def test_transient_fault_is_retried_once(serve: Any, fault: dict[str, Any]) -> None:
    server, model = serve([{"fault": fault}, OK])
    result = complete(model)
    assert result.content == "done"
    assert result.retries == 1
    assert len(server.requests) == 2


def test_timeout_is_retried(serve: Any) -> None:
    server, model = serve([{"fault": {"kind": "timeout", "delay": 5}}, OK], timeout=0.3)
    started = time.monotonic()
    result = complete(model)
    assert result.retries == 1 and result.content == "done"
    assert 0.3 <= time.monotonic() - started < 3


def test_retry_after_is_honoured(serve: Any) -> None:
    server, model = serve([{"fault": {"status": 429, "retry_after": 0.3}}, OK])
    started = time.monotonic()
    result = complete(model)
    assert time.monotonic() - started >= 0.3
    assert result.retries == 1 and result.latency_s >= 0.3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 401}, r"^authentication failed \(401\): check OPENAI_API_KEY"),
        ({"status": 403}, r"^authentication failed \(403\)"),
        (
            {"status": 404, "message": "The model `x` does not exist"},
            r"^model not found \(404\): 'test-model'",
        ),
        (
            {"status": 400, "code": "context_length_exceeded", "message": "max 8192 tokens, got 9000"},
            r"^context length exceeded: max 8192 tokens, got 9000$",
        ),
        # vLLM's wording, with no error code
        (
            {"status": 400, "message": "This model's maximum context length is 4096 tokens."},
            r"^context length exceeded: This model's maximum context length",
        ),
        ({"status": 422, "message": "unknown field\n'foo'"}, r"^bad request \(422\): unknown field 'foo'$"),
    ],
)
def test_final_errors_are_not_retried(serve: Any, fault: dict[str, Any], reason: str) -> None:
    server, model = serve([{"fault": fault}, OK])
    with pytest.raises(ModelError, match=reason) as err:
        complete(model)
    assert len(server.requests) == 1
    assert err.value.retryable is False
    assert "\n" not in err.value.reason


def test_retries_exhausted_gives_one_line_reason(serve: Any) -> None:
    server, model = serve([{"fault": {"status": 429}}] * 4, max_retries=3)
    with pytest.raises(ModelError) as err:
        complete(model)
    assert err.value.reason == "rate limited (429) after 3 retries"
    assert err.value.retryable is True
    assert len(server.requests) == 4


def test_zero_retries_fails_on_first_transient(serve: Any) -> None:
    server, model = serve([{"fault": {"kind": "malformed"}}, OK], max_retries=0)
    with pytest.raises(ModelError, match=r"^malformed reply \(body is not JSON\) after 0 retries$"):
        complete(model)
    assert len(server.requests) == 1


def test_connection_refused_is_a_model_error() -> None:
    server = ScriptedServer([])
    url = server.url
    server.close()
    model = OpenAICompatModel("m", url, "k", max_retries=1, backoff_base=0.01, timeout=2)
    with pytest.raises(ModelError, match=r"^connection to (\S+) failed .* after 1 retries$") as caught:
        complete(model)
    assert url in str(caught.value)  # the message names the URL it tried
    model.close()


def test_close_runs_on_close_once() -> None:
    calls: list[int] = []
    model = OpenAICompatModel("m", "http://127.0.0.1:9/v1", "k", on_close=lambda: calls.append(1))
    model.close()
    model.close()
    assert calls == [1]


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= (parse_retry_after({"retry-after": date}) or 0) <= 31


def test_body_joined_from_cached_messages_matches_the_request(serve: Any, monkeypatch) -> None:
    """Messages sent before are not encoded again, yet an edit in place (or a replaced message) is sent."""
    import devloop.models.body as body

    server, model = serve([OK, OK, OK])
    encoded: list[Any] = []
    real = body.dumps
    monkeypatch.setattr(body, "dumps", lambda v: (encoded.append(v), real(v))[1])
    history = [dict(m) for m in MESSAGES]
    params = SamplingParams(temperature=0.5, extra_body={"top_k": 3})
    model.complete(history, TOOLS, params)
    history += [{"role": "assistant", "content": "ünïcode ✓"}, {"role": "user", "content": "more"}]
    encoded.clear()
    model.complete(history, TOOLS, params)
    assert not any(m in encoded for m in MESSAGES)  # the first two were reused
    assert {"role": "user", "content": "more"} in encoded
    history[0]["content"] = "edited in place"
    model.complete(history, None, SamplingParams())
    sent = server.requests
    assert sent[1] == {
        "model": "test-model",
        "messages": [*MESSAGES, *history[2:]],
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.5,
        "top_k": 3,
    }
    assert sent[2]["messages"] == history and "tools" not in sent[2]
    assert sent[2]["messages"][0]["content"] == "edited in place"


def test_tools_are_encoded_once_yet_a_change_to_them_is_sent(serve: Any, monkeypatch) -> None:
    import copy

    import devloop.models.body as body

    server, model = serve([OK, OK, OK, OK])
    encoded: list[Any] = []
    real = body.dumps
    monkeypatch.setattr(body, "dumps", lambda v: (encoded.append(v), real(v))[1])
    tools = copy.deepcopy(TOOLS)
    model.complete([dict(m) for m in MESSAGES], tools, SamplingParams())
    encoded.clear()
    model.complete([dict(m) for m in MESSAGES], tools, SamplingParams())
    assert tools not in encoded  # the same list, unchanged: its encoding is reused
    tools[0]["function"]["description"] = "changed in place"
    model.complete([dict(m) for m in MESSAGES], tools, SamplingParams())
    other = copy.deepcopy(TOOLS) + [{"type": "function", "function": {"name": "extra", "parameters": {}}}]
    model.complete([dict(m) for m in MESSAGES], other, SamplingParams())
    sent = [r["tools"] for r in server.requests]
    assert sent[0] == sent[1] == TOOLS
    assert sent[2][0]["function"]["description"] == "changed in place"
    assert sent[3] == other


def test_org_and_project_headers_from_the_environment_as_the_sdk_sends_them(serve: Any, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-2")
    server, model = serve([OK])
    complete(model)
    headers = {k.lower(): v for k, v in server.request_headers[0].items()}
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-2")
    assert headers["content-type"] == "application/json"


def test_status_error_body_matches_the_sdk(serve: Any) -> None:
    # The same error reply through devloop's client and through the SDK: the same status, body and
    # the same one-line message taken from it.
    import openai

    from devloop.models.http import ChatHttp, HttpStatusError
    from devloop.models.openai_compat import server_message

    fault = {"fault": {"status": 400, "message": "bad  thing\nhere", "code": "x1"}}
    server, _ = serve([fault, fault])
    mine = ChatHttp(server.url, "k", timeout=5)
    sdk = openai.OpenAI(api_key="k", base_url=server.url, max_retries=0)
    with pytest.raises(HttpStatusError) as ours:
        mine.request("POST", "/chat/completions", content=b'{"model":"m","messages":[]}')
    with pytest.raises(openai.APIStatusError) as theirs:
        sdk.post("/chat/completions", content=b'{"model":"m","messages":[]}', cast_to=str)
    assert ours.value.status_code == theirs.value.status_code == 400
    assert server_message(ours.value) == server_message(theirs.value) == ("bad thing here", "x1")
    mine.close()
    sdk.close()


def test_a_plain_run_does_not_import_the_sdk_or_httpx(tmp_path) -> None:
    # The SDK's import is ~0.4 s of CPU; a `devloop run` sends plain requests and never needs it. To a
    # local plain-http server they go on http.client, so httpx (~0.1 s) is not imported either.
    import json
    import subprocess
    import sys

    from devloop.demo import make_demo_repo

    make_demo_repo(tmp_path / "repo")
    finish = {
        "content": "ok",
        "tool_calls": [{"function": {"name": "finish", "arguments": {"message": "ok"}}}],
    }
    (tmp_path / "s.jsonl").write_text(json.dumps(finish) + "\n")
    argv = ["devloop", "run", "--repo", "repo", "--issue", "x", "--model", "scripted/s.jsonl"]
    argv += ["--sandbox", "none", "--output", "out"]
    code = (
        f"import sys, json\nsys.argv = {argv!r}\nfrom devloop.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps({'code': code, 'sdk': 'openai' in sys.modules, 'httpx': 'httpx' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["code"] in (0, None) and not seen["sdk"] and not seen["httpx"], (seen, proc.stderr)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["exit_status"] == "finished"


def test_tls_settings_by_url_and_proxy(monkeypatch) -> None:
    import ssl

    from devloop.models.http import _tls

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _tls("https://api.example.com/v1") is True  # the CA bundle, as the SDK
    bare = _tls("http://127.0.0.1:8000/v1")
    # No trust anchors, but verification on: a TLS handshake could only fail, never pass unchecked.
    assert isinstance(bare, ssl.SSLContext) and bare.verify_mode == ssl.CERT_REQUIRED and bare.check_hostname
    assert bare.get_ca_certs() == []
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example:3128")
    assert _tls("http://10.0.0.2:8000/v1") is True  # through a proxy TLS may be spoken: the bundle


def test_a_redirect_is_a_status_error_as_with_the_sdk() -> None:
    # The SDK raises on every status but 2xx (a redirect is not followed); so does devloop's client, on
    # httpx (an https URL, here on a mock transport) and on its direct path (a plain-http server).
    import http.server
    import threading

    import httpx

    from devloop.models.http import ChatHttp, HttpStatusError

    client = ChatHttp("https://127.0.0.1:9/v1", "k", timeout=5)
    assert client._direct is None
    client._httpx = httpx.Client(
        base_url="https://127.0.0.1:9/v1/",
        transport=httpx.MockTransport(lambda r: httpx.Response(301, text="moved")),
    )
    with pytest.raises(HttpStatusError) as caught:
        client.request("POST", "/chat/completions", content=b"{}")
    assert caught.value.status_code == 301 and caught.value.body == "moved"
    client.close()

    class Moved(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(301)
            self.send_header("Location", "http://elsewhere.example/")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"moved")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ChatHttp(f"http://127.0.0.1:{server.server_port}/v1", "k", timeout=5)
        assert client._direct is not None
        with pytest.raises(HttpStatusError) as caught:
            client.request("POST", "/chat/completions", content=b"{}")
        assert caught.value.status_code == 301 and caught.value.body == "moved"
        assert caught.value.response.headers["location"] == "http://elsewhere.example/"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_direct_client_builds_httpx_only_to_stream_and_refuses_requests_once_closed(serve: Any) -> None:
    # Building httpx's client (and a TLS context) is a millisecond of every run's start: a plain-http
    # server reached directly needs it only for a streamed reply.
    from devloop.models.http import ChatHttp, HttpClosed

    server, _ = serve([OK] * 3)
    client = ChatHttp(server.url, "k", timeout=5)
    body = b'{"model":"m","messages":[]}'
    client.request("POST", "/chat/completions", content=body)
    assert client._direct is not None and client._httpx is None
    with client.stream("/chat/completions", body) as response:
        assert response.status_code == 200 and "choices" in response.read().decode()
    assert client._httpx is not None and not client._httpx.is_closed
    client.close()
    assert client._httpx.is_closed
    with pytest.raises(HttpClosed):
        client.request("POST", "/chat/completions", content=body)
    unused = ChatHttp(server.url, "k", timeout=5)
    unused.close()
    assert unused._httpx is None
    with pytest.raises(HttpClosed):  # closed before its client was ever built: it stays closed
        unused.request("POST", "/chat/completions", content=body)
    assert unused._client.is_closed


def test_direct_path_reuses_its_connection_and_survives_a_server_closing_it(serve: Any) -> None:
    # Keep-alive: many requests, one connection; when the server drops the idle connection the next
    # request goes on a new one and is sent once.
    from devloop.models.http import ChatHttp

    server, _ = serve([OK] * 4)
    client = ChatHttp(server.url, "k", timeout=5)
    assert client._direct is not None
    body = b'{"model":"m","messages":[]}'
    client.request("POST", "/chat/completions", content=body)
    client.request("POST", "/chat/completions", content=body)
    assert len(client._direct._idle) == 1
    client._direct._idle[0].sock.shutdown(2)  # as if the server had closed it while idle
    client.request("POST", "/chat/completions", content=body)
    client.request("POST", "/chat/completions", content=body)
    assert len(server.requests) == 4  # none sent twice, none lost
    client.close()
    assert client._direct.closed and client._direct._idle == []


def test_a_proxy_in_the_environment_sends_plain_http_through_httpx(monkeypatch) -> None:
    from devloop.models.http import ChatHttp

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert ChatHttp("http://127.0.0.1:8000/v1", "k", timeout=5)._direct is None
    monkeypatch.delenv("HTTP_PROXY")
    for name in ("http_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert ChatHttp("http://127.0.0.1:8000/v1", "k", timeout=5)._direct is not None


def test_a_request_after_close_fails_at_once_instead_of_retrying(serve: Any) -> None:
    # a run that ends (time limit) while a reply is awaited closes the client: the waiting thread must
    # not keep retrying a closed connection with backoff after its run is over
    server, model = serve([{"content": "never sent"}], max_retries=5, backoff_base=0.2, backoff_cap=1.0)
    model.close()
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="closed") as info:
        complete(model)
    assert time.monotonic() - t0 < 0.5 and not info.value.retryable
    assert server.request_sizes == []
