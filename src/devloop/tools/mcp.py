"""MCP tools: the tools of stdio MCP servers the user configured, offered to the model like any other.

An MCP server is code the user chose to run: devloop starts it on the host, outside the sandbox, with the
command, environment and working directory of its entry in the user's config file (never from a file
in the repository, which the model may write; see devloop.config). A user who wants it contained wraps
the command themselves (e.g. `command = ["bwrap", ..., "my-server"]` or `["docker", "run", "-i", ...]`).
Each server's tools join the Toolbox under the name `mcp__<server>__<tool>`, so every tool-call format
presents them and the command policy sees them as the tool kind `mcp` (asked about, never allowed by a
default or by a rule for every tool; see devloop.policy).

The `mcp` SDK is asynchronous; the agent loop is not. McpServers runs one event loop in a background
thread, one task per server holding its session open for the run, and hands each call to its task.
The SDK is imported only when servers are started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from devloop.tools.base import ToolContext, ToolSpec
from devloop.types import Observation

MCP_PREFIX = "mcp__"
MCP_KIND = "mcp"  # the policy's name for every MCP tool
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MAX_NAME = 64  # the OpenAI limit on a function name


class McpServerConfig(BaseModel):
    """One `[mcp_servers.NAME]` table of the user's devloop.toml."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(min_length=1)
    """The program and its arguments, e.g. ["npx", "-y", "@modelcontextprotocol/server-github"]."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables for the server, over a minimal inherited set (HOME, PATH, SHELL, TERM, USER, LOGNAME)."""
    cwd: Path | None = None
    """Its working directory (default: devloop's)."""
    timeout: float = Field(30.0, gt=0)
    """Seconds to wait for it to start, and for one tool call."""


class McpError(RuntimeError):
    """A server did not start or list its tools; one line naming it."""


def is_mcp_tool(name: str) -> bool:
    return name.startswith(MCP_PREFIX)


def tool_name(server: str, tool: str) -> str:
    """`mcp__<server>__<tool>`, with what a function name may not hold replaced by `_`, cut to 64."""
    return (MCP_PREFIX + server + "__" + re.sub(r"[^A-Za-z0-9_-]", "_", tool))[:_MAX_NAME]


def check_server_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"MCP server name {name!r}: use letters, digits, '_' and '-' only")
    return name


def _args_model(name: str, schema: Any) -> type[BaseModel]:
    """A pydantic model accepting the schema's properties by their names (any values: the server checks
    them), requiring its required ones. Fields are aliased, so any property name works."""
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    fields: dict[str, Any] = {}
    for i, prop in enumerate(props if isinstance(props, dict) else {}):
        default = ... if prop in required else None
        fields[f"p{i}"] = (Any, Field(default, alias=str(prop)))
    config = ConfigDict(extra="forbid", populate_by_name=False)
    model: type[BaseModel] = create_model(f"{name}_args", __config__=config, **fields)
    return model


class _McpTool:
    """Base of the per-tool classes make_tool builds (the Tool protocol's name and Args are class-level)."""

    name: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    description: ClassVar[str]
    schema: ClassVar[dict[str, Any]]
    call: ClassVar[Callable[[dict[str, Any], float, int], Observation]]

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.schema)

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        arguments = args.model_dump(by_alias=True, exclude_unset=True)
        return type(self).call(arguments, ctx.command_timeout, ctx.output_cap)


def make_tool(server: str, tool: Any, call: Callable[[str, dict[str, Any], float, int], Observation]) -> Any:
    """A Tool for the MCP tool `tool` (an mcp Tool: name, description, input schema) of `server`."""
    name = tool_name(server, tool.name)
    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {"type": "object"}
    schema = schema if isinstance(schema, dict) else {"type": "object"}
    described = (tool.description or "").strip() or f"The `{tool.name}` tool."
    remote = tool.name

    def forward(arguments: dict[str, Any], timeout: float, cap: int) -> Observation:
        return call(remote, arguments, timeout, cap)

    attrs = {
        "name": name,
        "Args": _args_model(name, schema),
        "description": f"{described}\n\n(MCP server `{server}`, configured by the user.)",
        "schema": schema,
        "call": staticmethod(forward),
    }
    return type(f"McpTool_{name}", (_McpTool,), attrs)()


class McpServers:
    """The user's MCP servers for one run: `start()` launches them and returns their tools, `close()`
    ends them (each also ends with devloop: the SDK kills a server's process tree on close)."""

    def __init__(self, configs: Mapping[str, McpServerConfig]) -> None:
        self.configs = dict(configs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queues: dict[str, asyncio.Queue[Any]] = {}
        self._tasks: list[concurrent.futures.Future[None]] = []
        self._logs: dict[str, Any] = {}

    def start(self) -> list[Any]:
        """Start every server and list its tools. Raises McpError naming the server that failed (the
        others are closed)."""
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise McpError(
                "mcp_servers are configured but the `mcp` package is not installed: pip install 'devloop[mcp]'"
            ) from None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="devloop-mcp", daemon=True)
        self._thread.start()
        tools: list[Any] = []
        try:
            for name, config in self.configs.items():
                tools += self._start_one(name, config)
        except BaseException:
            self.close()
            raise
        return tools

    def _start_one(self, name: str, config: McpServerConfig) -> list[Any]:
        assert self._loop is not None
        ready: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        # The server's stderr, for the hint in a start error; closed in close().
        log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._logs[name] = log
        self._tasks.append(
            asyncio.run_coroutine_threadsafe(self._serve(name, config, ready, log), self._loop)
        )
        try:
            listed = ready.result(timeout=config.timeout)
        except concurrent.futures.TimeoutError:
            raise McpError(
                f"MCP server {name!r}: did not start within {config.timeout:g} s{self._said(name)}"
            ) from None
        except Exception as e:
            why = f"{type(e).__name__}: {e}".splitlines()[0]
            raise McpError(
                f"MCP server {name!r} ({' '.join(config.command)}): {why}{self._said(name)}"
            ) from None

        def call(tool: str, arguments: dict[str, Any], timeout: float, cap: int) -> Observation:
            return self._call(name, tool, arguments, min(timeout, config.timeout), cap)

        return [make_tool(name, tool, call) for tool in listed]

    def _said(self, name: str) -> str:
        """The last line the server wrote on stderr, as a hint."""
        log = self._logs.get(name)
        if log is None:
            return ""
        try:
            log.seek(0)
            lines = [line.strip() for line in log.read()[-4000:].splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f" (it said: {lines[-1][:200]})" if lines else ""

    async def _serve(
        self, name: str, config: McpServerConfig, ready: concurrent.futures.Future[list[Any]], log: Any
    ) -> None:
        from mcp import ClientSession, StdioServerParameters, stdio_client
        from mcp.types import PaginatedRequestParams

        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[name] = queue
        params = StdioServerParameters(
            command=config.command[0], args=config.command[1:], env=config.env or None, cwd=config.cwd
        )
        try:
            async with (
                stdio_client(params, errlog=log) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                listed, cursor = [], None
                while True:
                    page = await session.list_tools(
                        params=PaginatedRequestParams(cursor=cursor) if cursor else None
                    )
                    listed += page.tools
                    cursor = page.next_cursor
                    if not cursor:
                        break
                ready.set_result(listed)
                while (item := await queue.get()) is not None:
                    tool, arguments, timeout, done = item
                    try:
                        result = await session.call_tool(tool, arguments, read_timeout_seconds=timeout)
                    except Exception as e:
                        done.set_exception(e)
                    else:
                        done.set_result(result)
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else RuntimeError("cancelled"))
            if not isinstance(e, Exception):
                raise
        finally:  # a server that exited answers no more calls: those waiting are told at once
            self._queues.pop(name, None)
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    item[3].set_exception(RuntimeError(f"the MCP server {name!r} has exited"))

    def _call(
        self, server: str, tool: str, arguments: dict[str, Any], timeout: float, cap: int
    ) -> Observation:
        label = f"`{tool_name(server, tool)}`"
        queue, loop = self._queues.get(server), self._loop
        if queue is None or loop is None or loop.is_closed():
            return Observation(f"The MCP server `{server}` is not running.", is_error=True)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        loop.call_soon_threadsafe(queue.put_nowait, (tool, arguments, timeout, done))
        try:
            result = done.result(timeout=timeout + 5)
        except concurrent.futures.TimeoutError:
            return Observation(f"The MCP tool {label} did not answer within {timeout:g} s.", is_error=True)
        except Exception as e:
            why = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            return Observation(
                f"The MCP tool {label} failed: {why}", is_error=True, meta={"mcp_server": server}
            )
        text = _clip(result_text(result), cap)
        is_error = bool(getattr(result, "is_error", False) or getattr(result, "isError", False))
        return Observation(text, is_error=is_error, meta={"mcp_server": server})

    def close(self) -> None:
        """End every server (bounded waits) and the event loop. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for queue in list(self._queues.values()):
            loop.call_soon_threadsafe(queue.put_nowait, None)
        for task in self._tasks:
            try:
                task.result(timeout=10)
            except Exception:  # a server that failed has said so at start; closing goes on
                task.cancel()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        for log in self._logs.values():
            log.close()
        self._queues.clear()
        self._tasks.clear()


def result_text(result: Any) -> str:
    """An MCP tool result as the text the model reads: its text blocks; other blocks named."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            mime = getattr(block, "mime_type", None) or getattr(block, "mimeType", "")
            parts.append(f"[{kind} content ({mime}): not shown]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {getattr(resource, 'uri', '?')}]")
        elif kind == "resource_link":
            parts.append(f"[resource link {getattr(block, 'uri', '?')}]")
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return "\n".join(parts) if parts else "(no output)"


def _clip(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    half = cap // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half:,} characters not shown ...]\n{text[-half:]}"
