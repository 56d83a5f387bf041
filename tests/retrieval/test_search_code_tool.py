"""The `search_code` agent tool: offered in every format, confined to the workspace, incremental."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devloop.formats import get_format
from devloop.tools.base import ToolContext
from devloop.tools.registry import default_toolbox
from devloop.types import ToolCall


class _NoShell:
    """A runtime that fails the test if the tool ever runs a command (it must read files itself)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"search_code used the runtime ({name})")


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    ws = tmp_path / "ws"
    (ws / "lib").mkdir(parents=True)
    (ws / "lib" / "headers.py").write_text("def parse_http_header(line):\n    return line\n")
    (ws / "lib" / "other.py").write_text("def unrelated():\n    pass\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.py").write_text("def parse_header_secret():\n    pass\n")
    (ws / "leak.py").symlink_to(outside / "leak.py")
    (ws / "out").symlink_to(outside)
    return ToolContext(runtime=_NoShell(), root=ws)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["native", "mistral", "xml", "hermes"])
def test_every_format_offers_search_code(name: str) -> None:
    box = default_toolbox()
    assert "search_code" in box.names
    spec = next(s for s in box.specs() if s.name == "search_code")
    assert spec.parameters["required"] == ["query"]
    assert set(spec.parameters["properties"]) == {"query", "k"}
    if name == "native":  # the tools travel in the request's `tools` field, not in the prompt
        assert any(t["function"]["name"] == "search_code" for t in box.openai_tools())
    else:
        assert "search_code" in get_format(name).render_tools(box.specs())


def test_search_code_finds_definitions_inside_the_workspace_only(ctx: ToolContext) -> None:
    box = default_toolbox()
    obs = box.execute(ToolCall("search_code", {"query": "header parsing", "k": 5}), ctx)
    assert not obs.is_error
    assert obs.text.splitlines()[1] == "  lib/headers.py"
    assert "lib/headers.py:1: def parse_http_header(line)" in obs.text
    assert "secret" not in obs.text and "leak" not in obs.text
    (ctx.root / "lib" / "other.py").write_text("def header_cache():\n    pass\n")
    again = box.execute(ToolCall("search_code", {"query": "header cache", "k": 1}), ctx)
    assert "lib/other.py:1: def header_cache()" in again.text
    none = box.execute(ToolCall("search_code", {"query": "zebra"}), ctx)
    assert none.text.startswith("No file matches")
