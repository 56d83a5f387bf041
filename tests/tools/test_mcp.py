"""MCP tools: a tiny stdio MCP server written here, its tools offered in every tool-call format, gated by
the policy (asked about, denied in batch runs), configured only from the user's config file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from devloop.config import ConfigError, load_settings
from devloop.demo import encode_script
from devloop.models.scripted_server import ScriptedServer
from devloop.policy import GatedToolbox, load_policy
from devloop.session import run_agent
from devloop.tools.base import ToolContext
from devloop.tools.mcp import McpError, McpServerConfig, McpServers
from devloop.tools.registry import default_toolbox
from devloop.types import FormatError, ToolCall
from devloop.workspace import git

# JSON-RPC over stdin/stdout, one message a line: initialize, tools/list, tools/call. Every call is
# appended to the file named by argv[1], so a test can tell whether a call reached the server.
SERVER = r"""
import json, sys
log = open(sys.argv[1], "a")
TOOLS = [
    {"name": "add", "description": "Add two integers.",
     "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"]}},
    {"name": "echo-text", "description": "Echo a text; fails on 'boom'.",
     "inputSchema": {"type": "object", "properties": {"text-in": {"type": "string"}}, "required": ["text-in"]}},
]
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        result = {"protocolVersion": params.get("protocolVersion"), "capabilities": {"tools": {}},
                  "serverInfo": {"name": "tiny", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        args = params.get("arguments") or {}
        log.write(json.dumps(params) + "\n"); log.flush()
        if params["name"] == "add":
            result = {"content": [{"type": "text", "text": str(args["a"] + args["b"])}], "isError": False}
        else:
            text = args["text-in"]
            result = {"content": [{"type": "text", "text": "it went boom" if text == "boom" else text}],
                      "isError": text == "boom"}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": method}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"""


@pytest.fixture
def server(tmp_path: Path) -> tuple[McpServerConfig, Path]:
    script, calls = tmp_path / "tiny_mcp.py", tmp_path / "calls.jsonl"
    script.write_text(SERVER)
    calls.write_text("")
    return McpServerConfig(command=[sys.executable, str(script), str(calls)], timeout=20), calls


def test_the_servers_tools_run_through_the_toolbox(
    server: tuple[McpServerConfig, Path], tmp_path: Path
) -> None:
    config, calls = server
    servers = McpServers({"tiny": config})
    try:
        tools = servers.start()
        box = default_toolbox(tools)
        assert [t.name for t in tools] == ["mcp__tiny__add", "mcp__tiny__echo-text"]
        assert box.names[-1] == "finish" and "mcp__tiny__add" in box.names
        spec = next(s for s in box.specs() if s.name == "mcp__tiny__add")
        assert spec.parameters["required"] == ["a", "b"] and "Add two integers." in spec.description
        ctx = ToolContext(runtime=None, root=tmp_path)  # type: ignore[arg-type]  # MCP tools use no runtime
        assert box.execute(ToolCall("mcp__tiny__add", {"a": 2, "b": 40}), ctx).text == "42"
        echoed = box.execute(ToolCall("mcp__tiny__echo-text", {"text-in": "hi"}), ctx)
        failed = box.execute(ToolCall("mcp__tiny__echo-text", {"text-in": "boom"}), ctx)
        assert (echoed.text, echoed.is_error, failed.text, failed.is_error) == (
            "hi",
            False,
            "it went boom",
            True,
        )
        with pytest.raises(FormatError, match="unknown parameter `c`.*missing required parameter `b`"):
            box.execute(ToolCall("mcp__tiny__add", {"a": 1, "c": 2}), ctx)
    finally:
        servers.close()
    sent = [json.loads(line) for line in calls.read_text().splitlines()]
    assert sent[0] == {"name": "add", "arguments": {"a": 2, "b": 40}} and len(sent) == 3


def test_a_server_that_does_not_start_is_named_with_what_it_said(tmp_path: Path) -> None:
    bad = McpServerConfig(
        command=[sys.executable, "-c", "import sys; sys.exit('no token configured')"], timeout=20
    )
    servers = McpServers({"broken": bad})
    with pytest.raises(McpError, match=r"MCP server 'broken'.*no token configured"):
        servers.start()
    missing = McpServers({"gone": McpServerConfig(command=[str(tmp_path / "no-such-program")], timeout=20)})
    with pytest.raises(McpError, match="MCP server 'gone'"):
        missing.start()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README").write_text("hello\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


@pytest.mark.parametrize("fmt", ["native", "mistral", "xml", "hermes"])
def test_every_tool_call_format_offers_and_calls_mcp_tools(
    fmt: str, server: tuple[McpServerConfig, Path], repo: Path, tmp_path: Path, replies: Any
) -> None:
    config, calls = server
    script = encode_script([replies.call("mcp__tiny__add", 1, a=20, b=22), replies.finish()], fmt)
    asked: list[str] = []
    with ScriptedServer(script) as model:
        settings = load_settings(model="openai/scripted", base_url=model.url, sandbox="none", tool_format=fmt,
                                 mcp_servers={"tiny": config})  # fmt: skip
        result = run_agent(
            repo, "add", settings, tmp_path / "out", ask=lambda call, rule: asked.append(call.name) or True
        )
    assert result.exit_status == "finished", result.reason
    assert asked == ["mcp__tiny__add"]  # the policy asked, and the person said yes
    first = model.requests[0]
    offered = json.dumps(first.get("tools")) if fmt == "native" else first["messages"][0]["content"]
    assert "mcp__tiny__add" in offered and "Add two integers." in offered
    assert "42" in json.dumps(model.requests[1]["messages"][-1])
    assert json.loads(calls.read_text()) == {"name": "add", "arguments": {"a": 20, "b": 22}}


def test_the_policy_asks_denies_in_batch_and_a_rule_for_every_tool_does_not_allow(
    server: tuple[McpServerConfig, Path], repo: Path, tmp_path: Path
) -> None:
    config, calls = server
    servers = McpServers({"tiny": config})
    call = ToolCall("mcp__tiny__add", {"a": 1, "b": 2})
    lax = tmp_path / "lax.toml"
    lax.write_text('[[rule]]\ntool = "*"\npattern = ".*"\naction = "allow"\n')
    named = tmp_path / "named.toml"
    named.write_text('[[rule]]\ntool = "mcp"\naction = "allow"\n')
    empty_user = tmp_path / "none.toml"
    try:
        tools = servers.start()
        ctx = ToolContext(runtime=None, root=repo)  # type: ignore[arg-type]
        for files, interactive, runs in (([], False, False), ([lax], False, False), ([named], False, True),
                                         ([], True, True)):  # fmt: skip
            policy = load_policy(None, user_file=empty_user, extra_files=files)
            box = GatedToolbox(
                default_toolbox(tools), policy, repo, interactive=interactive, ask=lambda c, r: True
            )
            seen = len(calls.read_text().splitlines())
            observation = box.execute(call, ctx)
            assert (observation.text == "3") is runs, (files, interactive, observation.text)
            assert (
                len(calls.read_text().splitlines()) == seen + runs
            )  # a denied call never reaches the server
            if not runs:
                assert "needs a person's approval, and this is a batch run" in observation.text
    finally:
        servers.close()


def test_mcp_servers_are_read_from_the_user_config_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "config"
    (user / "devloop").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    table = '[mcp_servers.tiny]\ncommand = ["my-server", "--stdio"]\nenv = { TOKEN = "t" }\n'
    (user / "devloop" / "devloop.toml").write_text(table)
    settings = load_settings()
    assert settings.mcp_servers["tiny"].command == ["my-server", "--stdio"]
    assert settings.mcp_servers["tiny"].env == {"TOKEN": "t"}
    (project / "devloop.toml").write_text('model = "openai/m"\n' + table)
    with pytest.raises(
        ConfigError, match=r"project/devloop.toml:2: mcp_servers: .* read only from the user config"
    ):
        load_settings()
    (project / "devloop.toml").unlink()
    with pytest.raises(ConfigError, match="mcp_servers"):
        load_settings(mcp_servers={"bad name": {"command": ["x"]}})
    with pytest.raises(ConfigError, match="mcp_servers"):
        load_settings(mcp_servers={"empty": {"command": []}})
