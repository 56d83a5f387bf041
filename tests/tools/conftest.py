"""Fixtures for the editor and toolbox tests: a workspace in tmp_path and a runtime that must not be used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devloop.tools.base import ToolContext
from devloop.tools.editor import EditorArgs, EditorTool
from devloop.types import CommandResult, Observation


class NoShellRuntime:
    """Stands in for the runtime: the editor works on files directly and must never call the shell."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.commands: list[str] = []

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        raise AssertionError(f"the editor ran a shell command: {command!r}")

    def close(self) -> None:
        pass


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def tool_ctx(workspace: Path) -> ToolContext:
    return ToolContext(runtime=NoShellRuntime(workspace), root=workspace)


@pytest.fixture
def edit(tool_ctx: ToolContext):
    """Call the editor like a model would: edit(command, path, **args) -> Observation."""
    editor = EditorTool()

    def call(command: str, path: str | Path, **kwargs: Any) -> Observation:
        args = EditorArgs(command=command, path=str(path), **kwargs)
        return editor.run(args, tool_ctx)

    call.editor = editor  # type: ignore[attr-defined]
    return call
