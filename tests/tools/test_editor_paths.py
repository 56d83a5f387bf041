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


def test_undo_through_an_alias_uses_the_same_history(edit, workspace: Path) -> None:
    (workspace / "real.txt").write_text("one\n")
    (workspace / "alias.txt").symlink_to("real.txt")
    assert not edit("str_replace", workspace / "alias.txt", old_str="one", new_str="two").is_error
    obs = edit("undo_edit", workspace / "real.txt")
    assert not obs.is_error, obs.text
    assert (workspace / "real.txt").read_text() == "one\n"


def test_create_through_a_directory_link_inside_the_workspace(edit, workspace: Path) -> None:
    (workspace / "pkg").mkdir()
    (workspace / "shortcut").symlink_to("pkg", target_is_directory=True)
    assert not edit("create", workspace / "shortcut" / "sub" / "m.py", file_text="x = 1\n").is_error
    assert (workspace / "pkg" / "sub" / "m.py").read_text() == "x = 1\n"
    listing = edit("view", workspace).text
    assert f"{workspace}/shortcut\n" in listing + "\n"  # a link is listed, never descended into


def test_fifo_is_refused_not_waited_on(edit, workspace: Path) -> None:
    os.mkfifo(workspace / "pipe")
    for command in ("view", "str_replace", "insert"):
        obs = edit(command, workspace / "pipe", **ARGS)
        assert obs.is_error and "not a regular file" in obs.text
    assert "already exists" in edit("create", workspace / "pipe", file_text="x").text


def test_edit_of_a_hard_linked_file_leaves_the_other_name_alone(
    edit, workspace: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere.txt"
    other.write_text("shared\n")
    os.link(other, workspace / "f.txt")
    assert not edit("str_replace", workspace / "f.txt", old_str="shared", new_str="mine").is_error
    assert (workspace / "f.txt").read_text() == "mine\n" and other.read_text() == "shared\n"


def test_new_files_belong_to_the_owner_of_their_directory(edit, workspace: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root creates files for another user")
    os.chown(workspace, 65534, 65534)
    assert not edit("create", workspace / "new" / "m.py", file_text="x\n").is_error
    for made in (workspace / "new", workspace / "new" / "m.py"):
        assert (made.stat().st_uid, made.stat().st_gid) == (65534, 65534), made
