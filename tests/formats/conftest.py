"""ToolSpecs shaped like devloop's real tools, built from pydantic models as the tool layer does."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from devloop.tools.base import ToolSpec


class ExecuteBashArgs(BaseModel):
    command: str = Field(description="The bash command to run.")
    timeout: int | None = Field(default=None, description="Seconds before the command is killed.")


class StrReplaceEditorArgs(BaseModel):
    command: Literal["view", "create", "str_replace", "insert", "undo_edit"] = Field(
        description="The editing command."
    )
    path: str = Field(description="Absolute path of the file or directory.")
    file_text: str | None = Field(default=None, description="Content of the file to create.")
    old_str: str | None = Field(default=None, description="The exact text to replace.")
    new_str: str | None = Field(default=None, description="The replacement text.")
    insert_line: int | None = Field(default=None, description="Insert after this line.")
    view_range: list[int] | None = Field(default=None, description="Lines to show, [start, end].")


class ThinkArgs(BaseModel):
    thought: str = Field(description="Your reasoning.")


class FinishArgs(BaseModel):
    message: str = Field(description="A summary of what was done.")


def make_tools() -> list[ToolSpec]:
    return [
        ToolSpec("execute_bash", "Run a command in a bash shell.", ExecuteBashArgs.model_json_schema()),
        ToolSpec(
            "str_replace_editor",
            "View, create and edit files.\nUse absolute paths.",
            StrReplaceEditorArgs.model_json_schema(),
        ),
        ToolSpec("think", "Think out loud; changes nothing.", ThinkArgs.model_json_schema()),
        ToolSpec("finish", "End the task.", FinishArgs.model_json_schema()),
    ]


@pytest.fixture
def tools() -> list[ToolSpec]:
    return make_tools()
