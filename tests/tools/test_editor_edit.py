"""`create`, `str_replace`, `insert` and `undo_edit`: behaviour and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_create_makes_parents_and_writes_exactly(edit, workspace: Path) -> None:
    target = workspace / "new" / "dir" / "m.py"
    obs = edit("create", target, file_text="def f():\n    return 1\n")
    assert not obs.is_error
    assert target.read_bytes() == b"def f():\n    return 1\n"
    assert "Created" in obs.text and "2 lines" in obs.text
    assert obs.meta["changed"] is True


def test_create_refuses_to_overwrite(edit, workspace: Path) -> None:
    (workspace / "x.py").write_text("keep\n")
    obs = edit("create", workspace / "x.py", file_text="new\n")
    assert obs.is_error
    assert "already exists" in obs.text and "str_replace" in obs.text
    assert (workspace / "x.py").read_text() == "keep\n"


def test_create_needs_file_text(edit, workspace: Path) -> None:
    obs = edit("create", workspace / "x.py")
    assert obs.is_error and "needs `file_text`" in obs.text
    assert not (workspace / "x.py").exists()


def test_create_on_a_directory_is_refused(edit, workspace: Path) -> None:
    (workspace / "d").mkdir()
    obs = edit("create", workspace / "d", file_text="x")
    assert obs.is_error and "directory" in obs.text


def test_str_replace_unique_match_returns_snippet(edit, workspace: Path) -> None:
    lines = [f"line {i}" for i in range(1, 21)]
    (workspace / "f.txt").write_text("\n".join(lines) + "\n")
    obs = edit("str_replace", workspace / "f.txt", old_str="line 10\n", new_str="ten\nTEN\n")
    assert not obs.is_error
    expected = lines[:9] + ["ten", "TEN"] + lines[10:]
    assert (workspace / "f.txt").read_text() == "\n".join(expected) + "\n"
    body = obs.text.split("\n")
    assert "Lines 6-15" in body[0]
    assert body[1] == "     6\tline 6"
    assert "    10\tten" in body and "    11\tTEN" in body
    assert body[10] == "    15\tline 14"


def test_str_replace_empty_new_str_deletes(edit, workspace: Path) -> None:
    (workspace / "f.py").write_text("a\nremove me\nb\n")
    obs = edit("str_replace", workspace / "f.py", old_str="remove me\n", new_str="")
    assert not obs.is_error
    assert (workspace / "f.py").read_text() == "a\nb\n"
    obs = edit("str_replace", workspace / "f.py", old_str="b\n")
    assert not obs.is_error
    assert (workspace / "f.py").read_text() == "a\n"


def test_str_replace_no_match(edit, workspace: Path) -> None:
    (workspace / "f.py").write_text("def f():\n    return 1\n")
    obs = edit("str_replace", workspace / "f.py", old_str="return 2", new_str="return 3")
    assert obs.is_error
    assert "not found verbatim" in obs.text and str(workspace / "f.py") in obs.text
    assert "whitespace is ignored" not in obs.text


def test_str_replace_whitespace_only_mismatch_is_explained(edit, workspace: Path) -> None:
    (workspace / "f.py").write_text("class A:\n\tdef f(self):\n\t\treturn 1\n")
    obs = edit("str_replace", workspace / "f.py", old_str="    def f(self):\n        return 1", new_str="x")
    assert obs.is_error
    assert "whitespace is ignored (line 2)" in obs.text
    assert (workspace / "f.py").read_text() == "class A:\n\tdef f(self):\n\t\treturn 1\n"


def test_str_replace_several_matches_lists_lines(edit, workspace: Path) -> None:
    (workspace / "f.py").write_text("x = 1\ny = 2\nx = 1\n\nx = 1\n")
    obs = edit("str_replace", workspace / "f.py", old_str="x = 1", new_str="x = 0")
    assert obs.is_error
    assert "occurs 3 times" in obs.text and "lines 1, 3, 5" in obs.text
    assert (workspace / "f.py").read_text() == "x = 1\ny = 2\nx = 1\n\nx = 1\n"


def test_str_replace_overlapping_matches_count_as_several(edit, workspace: Path) -> None:
    (workspace / "f.txt").write_text("aaa\n")
    obs = edit("str_replace", workspace / "f.txt", old_str="aa", new_str="b")
    assert obs.is_error and "occurs 2 times" in obs.text and "starting on line 1." in obs.text


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "needs `old_str`"),
        ({"old_str": ""}, "must not be empty"),
        ({"old_str": "a", "new_str": "a"}, "identical"),
    ],
)
def test_str_replace_argument_errors(edit, workspace: Path, kwargs, expected) -> None:
    (workspace / "f.txt").write_text("a\n")
    obs = edit("str_replace", workspace / "f.txt", **kwargs)
    assert obs.is_error and expected in obs.text


def test_str_replace_on_missing_file_and_directory(edit, workspace: Path) -> None:
    assert "does not exist" in edit("str_replace", workspace / "no.py", old_str="a").text
    assert "is a directory" in edit("str_replace", workspace, old_str="a").text


def test_insert_at_top_middle_and_end(edit, workspace: Path) -> None:
    f = workspace / "f.txt"
    f.write_text("one\ntwo\n")
    assert not edit("insert", f, insert_line=0, new_str="zero").is_error
    assert f.read_text() == "zero\none\ntwo\n"
    assert not edit("insert", f, insert_line=2, new_str="one and a half\n").is_error
    assert f.read_text() == "zero\none\none and a half\ntwo\n"
    obs = edit("insert", f, insert_line=4, new_str="three\nfour")
    assert not obs.is_error
    assert f.read_text() == "zero\none\none and a half\ntwo\nthree\nfour\n"
    assert "     5\tthree" in obs.text and "     6\tfour" in obs.text


def test_insert_into_empty_file_and_blank_line(edit, workspace: Path) -> None:
    f = workspace / "f.txt"
    f.write_bytes(b"")
    assert not edit("insert", f, insert_line=0, new_str="first").is_error
    assert f.read_bytes() == b"first\n"
    assert not edit("insert", f, insert_line=1, new_str="").is_error
    assert f.read_bytes() == b"first\n\n"


@pytest.mark.parametrize("line", [-1, 3])
def test_insert_line_out_of_range(edit, workspace: Path, line: int) -> None:
    (workspace / "f.txt").write_text("a\nb\n")
    obs = edit("insert", workspace / "f.txt", insert_line=line, new_str="x")
    assert obs.is_error
    assert (
        f"insert_line {line} is out of range" in obs.text and "between 0" in obs.text and "and 2" in obs.text
    )


def test_insert_needs_its_arguments(edit, workspace: Path) -> None:
    (workspace / "f.txt").write_text("a\n")
    assert "needs `insert_line`" in edit("insert", workspace / "f.txt", new_str="x").text
    assert "needs `new_str`" in edit("insert", workspace / "f.txt", insert_line=1).text


def test_undo_restores_exact_bytes_step_by_step(edit, workspace: Path) -> None:
    f = workspace / "f.txt"
    original = b"\xef\xbb\xbfa\r\nb\tc\r\nno newline"
    f.write_bytes(original)
    edit("str_replace", f, old_str="b\tc", new_str="B")
    after_first = f.read_bytes()
    edit("insert", f, insert_line=0, new_str="top")
    assert f.read_bytes() != after_first
    obs = edit("undo_edit", f)
    assert not obs.is_error and f.read_bytes() == after_first
    assert "Undid the last edit" in obs.text
    edit("undo_edit", f)
    assert f.read_bytes() == original
    obs = edit("undo_edit", f)
    assert obs.is_error and "no edit" in obs.text


def test_undo_of_create_removes_the_file(edit, workspace: Path) -> None:
    f = workspace / "made.py"
    edit("create", f, file_text="x\n")
    obs = edit("undo_edit", f)
    assert not obs.is_error and not f.exists()
    assert "creation" in obs.text


def test_undo_without_history(edit, workspace: Path) -> None:
    (workspace / "f.txt").write_text("a\n")
    obs = edit("undo_edit", workspace / "f.txt")
    assert obs.is_error and "There is no edit of" in obs.text


def test_editor_never_touches_the_shell(edit, workspace: Path, tool_ctx) -> None:
    edit("create", workspace / "a.py", file_text="a\n")
    edit("str_replace", workspace / "a.py", old_str="a", new_str="b")
    edit("view", workspace)
    assert tool_ctx.runtime.commands == []


def test_edit_preserves_file_mode(edit, workspace: Path) -> None:
    f = workspace / "run.sh"
    f.write_text("echo hi\n")
    f.chmod(0o755)
    edit("str_replace", f, old_str="hi", new_str="ho")
    assert f.stat().st_mode & 0o777 == 0o755
