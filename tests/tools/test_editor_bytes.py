"""Byte fidelity: the editor changes exactly the bytes it was asked to change and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

CRLF_SOURCE = b"def f():\r\n    a = 1\r\n    return a\r\n\r\ndef g():\r\n    pass\r\n"


def test_crlf_str_replace_matches_lf_and_writes_crlf(edit, workspace: Path) -> None:
    f = workspace / "win.py"
    f.write_bytes(CRLF_SOURCE)
    obs = edit(
        "str_replace", f, old_str="    a = 1\n    return a", new_str="    a = 2\n    b = 3\n    return a + b"
    )
    assert not obs.is_error, obs.text
    assert f.read_bytes() == CRLF_SOURCE.replace(
        b"    a = 1\r\n    return a\r\n", b"    a = 2\r\n    b = 3\r\n    return a + b\r\n"
    )
    assert b"\n" not in f.read_bytes().replace(b"\r\n", b"")


def test_crlf_single_line_old_str_multi_line_new_str(edit, workspace: Path) -> None:
    f = workspace / "win.py"
    f.write_bytes(CRLF_SOURCE)
    assert not edit("str_replace", f, old_str="pass", new_str="x = 1\n    return x").is_error
    assert f.read_bytes().endswith(b"def g():\r\n    x = 1\r\n    return x\r\n")
    assert b"\n" not in f.read_bytes().replace(b"\r\n", b"")


def test_crlf_insert_and_create_neighbours(edit, workspace: Path) -> None:
    f = workspace / "win.py"
    f.write_bytes(CRLF_SOURCE)
    assert not edit("insert", f, insert_line=0, new_str="import os\nimport sys\n").is_error
    assert f.read_bytes() == b"import os\r\nimport sys\r\n" + CRLF_SOURCE
    assert not edit("insert", f, insert_line=8, new_str="# end").is_error
    assert f.read_bytes() == b"import os\r\nimport sys\r\n" + CRLF_SOURCE + b"# end\r\n"


def test_mixed_line_endings_keep_each_region(edit, workspace: Path) -> None:
    f = workspace / "mixed.txt"
    f.write_bytes(b"a\r\nb\r\nc\r\nd\ne\n")
    assert not edit("str_replace", f, old_str="d\ne", new_str="D\nE").is_error
    assert f.read_bytes() == b"a\r\nb\r\nc\r\nD\nE\n"
    assert not edit("str_replace", f, old_str="a\nb", new_str="A\nB").is_error
    assert f.read_bytes() == b"A\r\nB\r\nc\r\nD\nE\n"


def test_crlf_old_str_on_lf_file(edit, workspace: Path) -> None:
    f = workspace / "unix.txt"
    f.write_bytes(b"a\nb\nc\n")
    assert not edit("str_replace", f, old_str="a\r\nb", new_str="x\r\ny").is_error
    assert f.read_bytes() == b"x\ny\nc\n"


def test_tabs_are_kept(edit, workspace: Path) -> None:
    f = workspace / "Makefile"
    f.write_bytes(b"all:\n\tcc -o x x.c\n\techo done\n")
    assert not edit("str_replace", f, old_str="\techo done", new_str="\techo finished\n\t@true").is_error
    assert f.read_bytes() == b"all:\n\tcc -o x x.c\n\techo finished\n\t@true\n"


def test_missing_final_newline_is_kept(edit, workspace: Path) -> None:
    f = workspace / "f.txt"
    f.write_bytes(b"one\ntwo")
    assert not edit("str_replace", f, old_str="two", new_str="2").is_error
    assert f.read_bytes() == b"one\n2"
    assert not edit("insert", f, insert_line=2, new_str="three").is_error
    assert f.read_bytes() == b"one\n2\nthree"
    assert not edit("insert", f, insert_line=1, new_str="one and a half").is_error
    assert f.read_bytes() == b"one\none and a half\n2\nthree"


def test_final_newline_is_kept_when_present(edit, workspace: Path) -> None:
    f = workspace / "f.txt"
    f.write_bytes(b"one\ntwo\n")
    assert not edit("insert", f, insert_line=2, new_str="three").is_error
    assert f.read_bytes() == b"one\ntwo\nthree\n"


@pytest.mark.parametrize(
    ("old", "new"),
    [("café", "naïve résumé"), ("🙂", "🎉🚀"), ("日本語", "中文字符"), ("plain", "ünïcødé 😀 漢字")],
)
def test_unicode_old_and_new(edit, workspace: Path, old: str, new: str) -> None:
    f = workspace / "u.txt"
    content = f"start {old} end\nsecond line ✓\n"
    f.write_text(content, encoding="utf-8")
    obs = edit("str_replace", f, old_str=old, new_str=new)
    assert not obs.is_error, obs.text
    assert f.read_bytes() == content.replace(old, new).encode("utf-8")
    assert new in obs.text


def test_utf8_bom_is_kept(edit, workspace: Path) -> None:
    f = workspace / "bom.cs"
    f.write_bytes(b"\xef\xbb\xbfusing System;\r\nclass A {}\r\n")
    obs = edit("view", f)
    assert "\ufeff" not in obs.text and "     1\tusing System;" in obs.text
    assert not edit("str_replace", f, old_str="class A {}", new_str="class B {}").is_error
    assert f.read_bytes() == b"\xef\xbb\xbfusing System;\r\nclass B {}\r\n"
    assert not edit("insert", f, insert_line=0, new_str="// header").is_error
    assert f.read_bytes() == b"\xef\xbb\xbf// header\r\nusing System;\r\nclass B {}\r\n"


def test_latin1_file_round_trips_exactly(edit, workspace: Path) -> None:
    f = workspace / "legacy.py"
    original = "# -*- coding: latin-1 -*-\nname = 'Müller'\ncity = 'Zürich'\n".encode("latin-1")
    f.write_bytes(original)
    assert not edit("str_replace", f, old_str="Zürich", new_str="Genève").is_error
    assert f.read_bytes() == original.replace("Zürich".encode("latin-1"), "Genève".encode("latin-1"))
    assert "Müller".encode("latin-1") in f.read_bytes()
    edit("undo_edit", f)
    assert f.read_bytes() == original


def test_latin1_file_refuses_unencodable_text(edit, workspace: Path) -> None:
    f = workspace / "legacy.txt"
    original = "Müller\n".encode("latin-1")
    f.write_bytes(original)
    obs = edit("str_replace", f, old_str="Müller", new_str="Müller 😀")
    assert obs.is_error and "latin-1" in obs.text and "cannot represent" in obs.text
    assert f.read_bytes() == original


def test_untouched_bytes_survive_including_odd_whitespace(edit, workspace: Path) -> None:
    f = workspace / "odd.txt"
    original = b"a \t \r\n\x0c form feed\r\ntrailing   \n\xe2\x80\xa8 line sep\nz"
    f.write_bytes(original)
    assert not edit("str_replace", f, old_str="z", new_str="Z").is_error
    assert f.read_bytes() == original[:-1] + b"Z"


def test_create_writes_text_verbatim(edit, workspace: Path) -> None:
    text = "tab\there\r\ncrlf kept\nno final newline ✓"
    edit("create", workspace / "c.txt", file_text=text)
    assert (workspace / "c.txt").read_bytes() == text.encode("utf-8")
