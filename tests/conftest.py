"""Session-wide hooks (the sandbox escape table, gathered from every pytest-xdist worker), and what many
tests share: builders of scripted model replies (`replies`) and an in-process model (`fake_model`)."""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from devloop.models.base import ModelError
from devloop.types import Completion, SamplingParams, Usage

ESCAPE_ROWS_ENV = "DEVLOOP_TEST_ESCAPE_ROWS"
# Helpers the test modules import by name (`from cli_inprocess import run_devloop`).
sys.path.insert(0, str(Path(__file__).parent / "support"))


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a run without xdist) names the file; workers inherit it through the environment.
    if not hasattr(config, "workerinput") and ESCAPE_ROWS_ENV not in os.environ:
        fd, path = tempfile.mkstemp(prefix="devloop-escapes-", suffix=".jsonl")
        os.close(fd)
        os.environ[ESCAPE_ROWS_ENV] = path
        config.add_cleanup(lambda: Path(path).unlink(missing_ok=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the escape table (attempt, contained, by what), so it shows in any CI log without -s."""
    if hasattr(config, "workerinput"):
        return
    path = Path(os.environ.get(ESCAPE_ROWS_ENV, ""))
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    if not rows:
        return
    rows.sort(key=lambda r: r["attempt"])
    width = max(len(r["attempt"]) for r in rows)
    terminalreporter.section("sandbox escape attempts")
    terminalreporter.write_line(f"{'attempt'.ljust(width)}  contained  by what")
    for r in rows:
        terminalreporter.write_line(
            f"{r['attempt'].ljust(width)}  {('yes' if r['contained'] else 'NO').ljust(9)}  {r['by']}"
        )
    contained = sum(r["contained"] for r in rows)
    terminalreporter.write_line(
        f"{len(rows)} attempts, {contained} contained, {len(rows) - contained} not contained"
    )


# --- scripted replies and an in-process model ------------------------------------------------------------
# A script is a list of assistant messages, one per model reply, in the shape the scripted HTTP server
# (devloop.models.scripted_server) and FakeModel both replay.


class Replies:
    """Builders for scripted assistant messages with native tool calls."""

    @staticmethod
    def call(name: str, i: int = 0, *, content: str = "", **args: Any) -> dict[str, Any]:
        """A reply with one call to `name`, its id `c<i>`."""
        entry = {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        return {"role": "assistant", "content": content, "tool_calls": [entry]}

    @classmethod
    def bash(cls, command: str, i: int = 0, *, content: str = "") -> dict[str, Any]:
        return cls.call("execute_bash", i, content=content, command=command)

    @classmethod
    def replace(cls, path: str, old: str, new: str, i: int = 0) -> dict[str, Any]:
        """A str_replace edit of `path`."""
        return cls.call("str_replace_editor", i, command="str_replace", path=path, old_str=old, new_str=new)

    @classmethod
    def finish(cls, message: str = "done", i: int = 9) -> dict[str, Any]:
        return cls.call("finish", i, message=message)


@pytest.fixture
def replies() -> type[Replies]:
    return Replies


class FakeModel:
    """A Model in the process (no HTTP): replays a script and records each request, as the scripted server
    does. Past the script's end it raises ModelError, as a server with nothing left to say would fail."""

    name = "fake"

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: SamplingParams
    ) -> Completion:
        self.requests.append({"messages": copy.deepcopy(messages), "tools": tools, "params": params})
        if len(self.requests) > len(self.script):
            raise ModelError(f"the script has only {len(self.script)} replies")
        reply = self.script[len(self.requests) - 1]
        return Completion(
            content=reply.get("content"),
            tool_calls=reply.get("tool_calls") or [],
            usage=Usage(prompt_tokens=10, completion_tokens=5),
            finish_reason=reply.get("finish_reason", "stop"),
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_model() -> type[FakeModel]:
    return FakeModel
