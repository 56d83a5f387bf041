"""Paths: everything that resolves outside the workspace is refused, whatever the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

COMMANDS = ["view", "create", "str_replace", "insert", "undo_edit"]
ARGS = {"file_text": "x", "old_str": "secret", "new_str": "pwned", "insert_line": 0}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside.txt"
    target.write_text("secret\n")
    return target


@pytest.mark.parametrize("command", COMMANDS)
def test_dotdot_is_refused(edit, workspace: Path, outside: Path, command: str) -> None:
    obs = edit(command, f"{workspace}/../outside.txt", **ARGS)
    assert obs.is_error
    assert "outside the workspace" in obs.text and str(workspace) in obs.text
    assert outside.read_text() == "secret\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_relative_dotdot_is_refused(edit, outside: Path, command: str) -> None:
    obs = edit(command, "../outside.txt", **ARGS)
    assert obs.is_error and "outside the workspace" in obs.text
    assert outside.read_text() == "secret\n"


def test_absolute_path_elsewhere_is_refused(edit, outside: Path) -> None:
    obs = edit("view", outside)
    assert obs.is_error and "outside the workspace" in obs.text
    assert "symbolic link" not in obs.text
    assert edit("view", "/etc/passwd").is_error


@pytest.mark.parametrize("command", COMMANDS)
def test_symlink_pointing_out_is_refused(edit, workspace: Path, outside: Path, command: str) -> None:
    (workspace / "link.txt").symlink_to(outside)
    obs = edit(command, workspace / "link.txt", **ARGS)
    assert obs.is_error
    assert "symbolic link" in obs.text and str(outside) in obs.text
    assert outside.read_text() == "secret\n"


def test_symlinked_directory_pointing_out_is_refused(edit, workspace: Path, outside: Path) -> None:
    (workspace / "escape").symlink_to(outside.parent, target_is_directory=True)
    obs = edit("create", workspace / "escape" / "planted.py", file_text="x")
    assert obs.is_error and "outside the workspace" in obs.text
    assert not (outside.parent / "planted.py").exists()


def test_dangling_symlink_out_is_refused(edit, workspace: Path, tmp_path: Path) -> None:
    (workspace / "dangling").symlink_to(tmp_path / "not_yet")
    obs = edit("create", workspace / "dangling", file_text="x")
    assert obs.is_error and "outside the workspace" in obs.text
    assert not (tmp_path / "not_yet").exists()


def test_symlink_inside_the_workspace_is_fine(edit, workspace: Path) -> None:
    (workspace / "real.txt").write_text("hello\n")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert not edit("str_replace", workspace / "alias.txt", old_str="hello", new_str="bye").is_error
    assert (workspace / "real.txt").read_text() == "bye\n"
    assert (workspace / "alias.txt").is_symlink()


def test_dotdot_that_stays_inside_is_fine(edit, workspace: Path) -> None:
    (workspace / "a").mkdir()
    (workspace / "b.txt").write_text("x\n")
    obs = edit("view", f"{workspace}/a/../b.txt")
    assert not obs.is_error
    assert obs.meta["path"] == str(workspace / "b.txt")


def test_workspace_reached_through_a_symlinked_root(tmp_path: Path, workspace: Path) -> None:
    from devloop.tools.base import ToolContext
    from devloop.tools.editor import EditorArgs, EditorTool

    alias = tmp_path / "alias_root"
    alias.symlink_to(workspace, target_is_directory=True)
    (workspace / "f.txt").write_text("x\n")
    ctx = ToolContext(runtime=None, root=alias)  # type: ignore[arg-type]
    obs = EditorTool().run(EditorArgs(command="view", path=f"{alias}/f.txt"), ctx)
    assert not obs.is_error
    assert obs.meta["path"] == f"{alias}/f.txt"


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b"])
def test_empty_or_nul_path(edit, bad: str) -> None:
    obs = edit("view", bad)
    assert obs.is_error and "`path`" in obs.text


def test_unreadable_file_gives_one_line_error(edit, workspace: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read anything")
    f = workspace / "locked.txt"
    f.write_text("x\n")
    f.chmod(0)
    obs = edit("view", f)
    assert obs.is_error and obs.text.startswith(f"Cannot read {f}") and "\n" not in obs.text
