"""`view`: files with line numbers, ranges, truncation, directories, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.tools.editor import EditorTool


def test_view_file_numbers_lines_like_cat_n(edit, workspace: Path) -> None:
    (workspace / "a.py").write_text("x = 1\n\tif y:\n        z\n")
    obs = edit("view", workspace / "a.py")
    assert not obs.is_error
    body = obs.text.split("\n", 1)[1]
    assert body == "     1\tx = 1\n     2\t\tif y:\n     3\t        z"
    assert str(workspace / "a.py") in obs.text.split("\n", 1)[0]
    assert obs.meta["changed"] is False


def test_view_relative_path_is_under_the_root(edit, workspace: Path) -> None:
    (workspace / "pkg").mkdir()
    (workspace / "pkg" / "m.py").write_text("hello\n")
    obs = edit("view", "pkg/m.py")
    assert not obs.is_error
    assert "     1\thello" in obs.text
    assert obs.meta["path"] == str(workspace / "pkg" / "m.py")


def test_view_range_and_to_end(edit, workspace: Path) -> None:
    (workspace / "f.txt").write_text("".join(f"line{i}\n" for i in range(1, 11)))
    obs = edit("view", workspace / "f.txt", view_range=[3, 5])
    assert obs.text.split("\n")[1:] == ["     3\tline3", "     4\tline4", "     5\tline5"]
    assert "lines 3-5 of 10" in obs.text
    tail = edit("view", workspace / "f.txt", view_range=[9, -1])
    assert tail.text.split("\n")[1:] == ["     9\tline9", "    10\tline10"]


@pytest.mark.parametrize(
    ("view_range", "expected"),
    [
        ([0, 3], "start 0 is out of range"),
        ([11, 12], "start 11 is out of range"),
        ([2, 11], "end 11 is beyond the end"),
        ([5, 3], "end 3 is before start 5"),
        ([1, 2, 3], "must be two line numbers"),
    ],
)
def test_view_range_errors_are_precise(edit, workspace: Path, view_range, expected) -> None:
    (workspace / "f.txt").write_text("x\n" * 10)
    obs = edit("view", workspace / "f.txt", view_range=view_range)
    assert obs.is_error
    assert expected in obs.text
    assert "10 lines" in obs.text or "two line numbers" in obs.text or "before start" in obs.text


def test_view_long_file_is_cut_with_a_hint(tool_ctx, workspace: Path) -> None:
    (workspace / "big.py").write_text("".join(f"value_{i} = {i} * 2\n" for i in range(1, 5001)))
    editor = EditorTool(max_view_chars=2000)
    obs = editor.run(editor.Args(command="view", path=str(workspace / "big.py")), tool_ctx)
    assert not obs.is_error
    assert len(obs.text) < 2600
    last_shown = int(obs.text.split("\n")[-2].split("\t")[0])
    assert f"output cut at line {last_shown} of 5000" in obs.text
    assert f"view_range=[{last_shown + 1}, {last_shown + 200}]" in obs.text


def test_view_single_huge_line_is_shortened(tool_ctx, workspace: Path) -> None:
    (workspace / "min.js").write_text("a" * 50_000)
    editor = EditorTool(max_view_chars=4000)
    obs = editor.run(editor.Args(command="view", path=str(workspace / "min.js")), tool_ctx)
    assert "line cut: 49000 more characters" in obs.text
    assert len(obs.text) < 4000


def test_view_empty_file(edit, workspace: Path) -> None:
    (workspace / "empty.txt").write_bytes(b"")
    obs = edit("view", workspace / "empty.txt")
    assert not obs.is_error
    assert "is empty" in obs.text


def test_view_directory_two_levels_hidden_skipped(edit, workspace: Path) -> None:
    (workspace / "src" / "pkg" / "deep").mkdir(parents=True)
    (workspace / "src" / "pkg" / "deep" / "too_deep.py").write_text("")
    (workspace / "src" / "main.py").write_text("")
    (workspace / "README.md").write_text("")
    (workspace / ".git" / "objects").mkdir(parents=True)
    (workspace / ".env").write_text("")
    (workspace / "src" / ".cache").mkdir()
    obs = edit("view", workspace)
    assert not obs.is_error
    lines = obs.text.split("\n")
    root = str(workspace)
    assert lines[1] == f"{root}/"
    assert lines[2:5] == [f"{root}/README.md", f"{root}/src/", f"{root}/src/main.py"]
    assert f"{root}/src/pkg/" in lines
    assert not any("too_deep" in line or "deep/" in line for line in lines)
    assert not any(".git" in line or ".env" in line or ".cache" in line for line in lines[:-1])
    assert "2 hidden entries" in lines[-1]


def test_view_directory_with_range_is_refused(edit, workspace: Path) -> None:
    obs = edit("view", workspace, view_range=[1, 2])
    assert obs.is_error and "only applies to files" in obs.text


def test_view_missing_file(edit, workspace: Path) -> None:
    obs = edit("view", workspace / "nope.py")
    assert obs.is_error
    assert f"{workspace}/nope.py does not exist" in obs.text


@pytest.mark.parametrize("command", ["view", "str_replace", "insert"])
def test_binary_file_refused_for_every_command(edit, workspace: Path, command: str) -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    (workspace / "img.png").write_bytes(data)
    obs = edit(command, workspace / "img.png", old_str="PNG", new_str="x", insert_line=0)
    assert obs.is_error
    assert "binary file" in obs.text
    assert (workspace / "img.png").read_bytes() == data


def test_control_heavy_data_without_nul_is_binary(edit, workspace: Path) -> None:
    (workspace / "blob").write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0xFF]) * 100)
    assert "binary file" in edit("view", workspace / "blob").text


def test_latin1_file_is_viewable(edit, workspace: Path) -> None:
    (workspace / "l1.txt").write_bytes("café\n".encode("latin-1"))
    obs = edit("view", workspace / "l1.txt")
    assert not obs.is_error
    assert "     1\tcafé" in obs.text
    assert "latin-1" in obs.text


def test_view_crlf_file_shows_no_carriage_returns(edit, workspace: Path) -> None:
    (workspace / "w.txt").write_bytes(b"a\r\nb\r\n")
    obs = edit("view", workspace / "w.txt")
    assert "\r" not in obs.text
    assert obs.text.endswith("     1\ta\n     2\tb")


@pytest.mark.parametrize("text", ["[2, 3]", "2,3", " [2,3] "])
def test_view_range_given_as_text(edit, workspace: Path, text: str) -> None:
    (workspace / "f.txt").write_text("a\nb\nc\nd\n")
    obs = edit("view", workspace / "f.txt", view_range=text)
    assert obs.text.split("\n")[1:] == ["     2\tb", "     3\tc"]


def test_view_range_unparseable_text_is_a_validation_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        EditorTool.Args(command="view", path="/x", view_range="lines two to three")
