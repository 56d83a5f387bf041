"""Toolbox: specs, validation errors as FormatError, safe execution; think and finish; default_toolbox."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel

from devloop.formats.base import FormatError
from devloop.runtime.base import RuntimeFailure
from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import clean_schema, load_description
from devloop.tools.editor import EditorTool
from devloop.tools.finish import FinishTool
from devloop.tools.registry import Toolbox, default_toolbox
from devloop.tools.think import THOUGHT_LOGGED, ThinkTool
from devloop.types import Observation, ToolCall


class BoomArgs(BaseModel):
    what: str


class BoomTool:
    """A tool that fails the way buggy code does."""

    name: ClassVar[str] = "boom"
    Args: ClassVar[type[BaseModel]] = BoomArgs

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, "Explodes.", BoomArgs.model_json_schema())

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        raise self.exc


@pytest.fixture
def box() -> Toolbox:
    return Toolbox([EditorTool(), ThinkTool(), FinishTool()])


def test_specs_and_openai_tools(box: Toolbox) -> None:
    specs = box.specs()
    assert [s.name for s in specs] == ["str_replace_editor", "think", "finish"]
    editor = specs[0].parameters
    assert editor["required"] == ["command", "path"]
    assert editor["properties"]["command"]["enum"] == ["view", "create", "str_replace", "insert", "undo_edit"]
    assert editor["properties"]["insert_line"] == {
        "type": "integer",
        "description": editor["properties"]["insert_line"]["description"],
    }
    assert editor["properties"]["view_range"]["type"] == "array"
    assert "anyOf" not in str(editor) and "title" not in editor
    tools = box.openai_tools()
    assert tools[1] == {
        "type": "function",
        "function": {
            "name": "think",
            "description": load_description("think"),
            "parameters": specs[1].parameters,
        },
    }
    assert "str_replace" in tools[0]["function"]["description"]


def test_clean_schema_is_idempotent_and_pure() -> None:
    raw = EditorTool.Args.model_json_schema()
    once = clean_schema(raw)
    assert clean_schema(once) == once
    assert "anyOf" in str(raw)


def test_unknown_tool(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(ToolCall("run_shell", {"cmd": "ls"}), tool_ctx)
    msg = str(err.value)
    assert "Unknown tool `run_shell`" in msg
    assert "`str_replace_editor`, `think`, `finish`" in msg


def test_missing_argument(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(ToolCall("str_replace_editor", {"command": "view"}), tool_ctx)
    msg = str(err.value)
    assert msg.startswith("Invalid arguments for `str_replace_editor`: missing required parameter `path`.")
    assert (
        'Expected: str_replace_editor(command: "view"|"create"|"str_replace"|"insert"|"undo_edit", path: string'
        in msg
    )
    assert "insert_line?: integer" in msg and "view_range?: array of integer" in msg
    assert "\n" not in msg


def test_wrong_types(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(
            ToolCall(
                "str_replace_editor", {"command": "insert", "path": "/x", "insert_line": "ten", "new_str": 3}
            ),
            tool_ctx,
        )
    msg = str(err.value)
    assert "parameter `insert_line`: input should be a valid integer" in msg and 'got "ten"' in msg
    assert "parameter `new_str`: input should be a valid string, got 3" in msg


def test_wrong_literal_and_nested_item(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(
            ToolCall("str_replace_editor", {"command": "edit", "path": "/x", "view_range": [1, "z"]}),
            tool_ctx,
        )
    msg = str(err.value)
    assert "parameter `command`: input should be 'view', 'create'" in msg and 'got "edit"' in msg
    assert "parameter `view_range[1]`" in msg


def test_unknown_parameter(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(ToolCall("think", {"thought": "hm", "mood": "good"}), tool_ctx)
    assert "unknown parameter `mood`" in str(err.value)
    assert "Expected: think(thought: string)." in str(err.value)


def test_arguments_not_an_object(box: Toolbox, tool_ctx: ToolContext) -> None:
    with pytest.raises(FormatError) as err:
        box.execute(ToolCall("finish", ["done"]), tool_ctx)  # type: ignore[arg-type]
    assert "must be a JSON object" in str(err.value) and "got list" in str(err.value)


def test_lax_coercion_for_text_formats(box: Toolbox, tool_ctx: ToolContext, workspace: Path) -> None:
    (workspace / "f.txt").write_text("a\nb\n")
    call = ToolCall(
        "str_replace_editor", {"command": "view", "path": str(workspace / "f.txt"), "view_range": ["2", "2"]}
    )
    obs = box.execute(call, tool_ctx)
    assert not obs.is_error and obs.text.endswith("     2\tb")


def test_tool_crash_becomes_error_observation(tool_ctx: ToolContext) -> None:
    box = Toolbox([BoomTool(ValueError("bad value\nsecond line"))])
    obs = box.execute(ToolCall("boom", {"what": "x"}), tool_ctx)
    assert obs.is_error
    assert obs.text == "The tool `boom` failed unexpectedly: ValueError: bad value. Try a different approach."
    assert "Traceback" in obs.meta["traceback"]


def test_runtime_failure_propagates(tool_ctx: ToolContext) -> None:
    box = Toolbox([BoomTool(RuntimeFailure("sandbox died"))])
    with pytest.raises(RuntimeFailure):
        box.execute(ToolCall("boom", {"what": "x"}), tool_ctx)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ValueError, match="two tools are named 'think'"):
        Toolbox([ThinkTool(), ThinkTool()])


def test_think_and_finish(box: Toolbox, tool_ctx: ToolContext) -> None:
    obs = box.execute(ToolCall("think", {"thought": "maybe the cache"}), tool_ctx)
    assert obs.text == THOUGHT_LOGGED == "Your thought has been logged." and not obs.finished
    done = box.execute(ToolCall("finish", {"message": "Fixed the off-by-one; tests pass."}), tool_ctx)
    assert done.finished and not done.is_error
    assert done.text == "Fixed the off-by-one; tests pass."
    assert box.names == ["str_replace_editor", "think", "finish"] and "think" in box


def test_default_toolbox_uses_bash_tool_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeBashArgs(BaseModel):
        command: str

    class FakeBashTool:
        name: ClassVar[str] = "execute_bash"
        Args: ClassVar[type[BaseModel]] = FakeBashArgs

        def spec(self) -> ToolSpec:
            return ToolSpec(self.name, "Run a command.", FakeBashArgs.model_json_schema())

        def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
            return Observation("ran")

    fake = types.ModuleType("devloop.tools.bash")
    fake.BashTool = FakeBashTool  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "devloop.tools.bash", fake)
    box = default_toolbox()
    assert box.names == ["execute_bash", "str_replace_editor", "search_code", "think", "finish"]
    assert box.specs()[0].parameters["properties"]["command"] == {"type": "string"}


def test_default_toolbox_with_the_real_bash_tool() -> None:
    pytest.importorskip("devloop.tools.bash")
    box = default_toolbox()
    assert box.names == ["execute_bash", "str_replace_editor", "search_code", "think", "finish"]
    assert all(spec.description for spec in box.specs())


def test_package_exports_lazily() -> None:
    import devloop.tools as tools

    assert tools.Toolbox is Toolbox and tools.load_description is load_description
    with pytest.raises(AttributeError):
        _ = tools.NoSuchThing


def test_descriptions_ship_with_the_package() -> None:
    for name in ("editor", "think", "finish"):
        assert len(load_description(name)) > 50
    with pytest.raises(FileNotFoundError, match="nosuch.md"):
        load_description("nosuch")
