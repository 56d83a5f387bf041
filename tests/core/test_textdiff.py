"""The per-step patch computed without git is git's own, byte for byte, or left to git."""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from pathlib import Path

import pytest

from devloop.workspace import _DIFF, _EXCLUDES, _GIT, _GRANULARITY_NS, Workspace, isolated_git_env
from devloop.workspace.textdiff import Base, base_of, blob_id, section, split_sections

# Lines that make git's choices matter: repeats (blank lines, braces), function-like lines for the hunk
# headers (alphabetic, `_`, `$` first; indented ones are not), a line longer than git's 80-byte header.
COMMON = ["", "", "}", "    return x", "def f():", "class A:", "_private = 1", "$var", "  indented",
          "# comment", "a" * 100, "b" * 79 + " ", "\tdef g(): ", "end\r"]  # fmt: skip


def _line(rnd: random.Random, repeats: float) -> str:
    if rnd.random() < repeats:
        return rnd.choice(COMMON)
    return f"{rnd.choice(['def', 'v', ' w', '_u', '$x'])} {rnd.randrange(10**6)}"


def _edit(rnd: random.Random, lines: list[str], repeats: float) -> list[str]:
    cur = list(lines)
    for _ in range(rnd.randrange(1, 6)):
        at = rnd.randrange(len(cur) + 1)
        op = rnd.random()
        if op < 0.4 and cur:
            cur[min(at, len(cur) - 1)] = _line(rnd, repeats)
        elif op < 0.7:
            cur[at:at] = [_line(rnd, repeats) for _ in range(rnd.randrange(1, 4))]
        elif cur:
            del cur[at : at + rnd.randrange(1, 4)]
    return cur or ["z"]


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*_GIT, *args], cwd=cwd, env=env or isolated_git_env(), capture_output=True, check=True
    )
    return done.stdout.decode(errors="replace")


def test_a_section_is_gits_byte_for_byte_on_random_edits(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    rnd = random.Random(7)
    compared = left = 0
    for trial in range(160):
        repeats = 0.5 if trial % 2 else 0.1
        base = [_line(rnd, repeats) for _ in range(rnd.randrange(1, 50))]
        (repo / "f.txt").write_bytes(_text(base))
        _git(repo, "add", "f.txt")
        _git(repo, "commit", "-q", "--allow-empty", "-m", "b")
        new = _text(_edit(rnd, base, repeats))
        (repo / "f.txt").write_bytes(new)
        want = _git(repo, *_DIFF, "HEAD", "--", "f.txt")
        abbrev = blob_id(_text(base))[:7]
        got = section("f.txt", Base(_text(base), abbrev, "100644"), new)
        if got is None:
            left += 1
            continue
        compared += 1
        assert got == want, f"trial {trial}"
        if want:  # and the base is rebuilt from git's section exactly
            rebuilt = base_of(want, new)
            assert rebuilt is not None and rebuilt.data == _text(base) and rebuilt.old_id == abbrev
    assert compared >= 60 and left >= 20  # both ways were taken: certain answers and ones left to git


def test_what_has_more_than_one_answer_is_left_to_git() -> None:
    base = Base(b"a\nb\na\n", blob_id(b"a\nb\na\n")[:7], "100644")
    assert section("f", base, b"a\n") is None  # which `a` went is git's choice
    assert section("f", base, b"a\nb\na\nb\n") is None  # an added line the base has too
    assert section("f", base, b"a\nb\na") is None  # no final newline
    assert section("f", base, b"a\0\n") is None  # binary
    assert section("my file", base, b"c\n") is None  # a path git would print otherwise
    assert section("f", base, b"a\nb\na\n") == ""  # back to the base: no section
    blank = b"x\n\n\ny\n\n\nz\n"
    assert section("f", Base(blank, blob_id(blank)[:7], "100644"), b"X\n\n\nY\n\n\nz\n") is None
    assert section("f", base, b"a\nc\na\n") is not None  # one answer


def test_a_section_whose_ids_do_not_match_the_file_gives_no_base(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "f").write_text("one\ntwo\n")
    _git(repo, "add", "f")
    _git(repo, "commit", "-q", "-m", "b")
    (repo / "f").write_text("one\n2\n")
    patch = _git(repo, *_DIFF, "HEAD")
    assert base_of(patch, b"one\n2\n") is not None
    assert base_of(patch, b"one\n3\n") is None  # the file moved on since git read it
    assert split_sections(patch) == [("f", patch)]
    assert split_sections("garbage") is None


def _workspace_of(repo: Path) -> Workspace:
    """`repo` committed as it is, and a workspace on it."""
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return Workspace.create(repo)


def _settle() -> None:
    time.sleep(_GRANULARITY_NS / 1e9 + 0.005)


def _gits_patch(ws: Workspace) -> str:
    env = isolated_git_env()
    env.update(GIT_DIR=str(ws.gitdir), GIT_WORK_TREE=str(ws.root))
    return _git(ws.root, *_DIFF, ws.base, "--", ".", *_EXCLUDES, env=env)


@pytest.mark.parametrize("settled", [True, False], ids=["settled", "right-after-the-write"])
def test_a_workspaces_patch_equals_gits_at_every_step(tmp_path: Path, settled: bool) -> None:
    repo = tmp_path / "proj"
    (repo / "pkg").mkdir(parents=True)
    rnd = random.Random(3 if settled else 4)
    files = {f"f{k}.py": [_line(rnd, 0.1) for _ in range(40)] for k in range(3)}
    files["pkg/m.py"] = [_line(rnd, 0.1) for _ in range(40)]
    for name, lines in files.items():
        (repo / name).write_bytes(_text(lines))
    (repo / "README").write_text("left alone\n")
    ws = _workspace_of(repo)
    try:
        for _ in range(40):
            name = rnd.choice(list(files))
            files[name] = _edit(rnd, files[name], 0.1 if rnd.random() < 0.8 else 0.5)
            data = _text(files[name])
            if rnd.random() < 0.3:  # sed -i style: a new inode
                tmp = ws.root / (name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, ws.root / name)
            else:
                (ws.root / name).write_bytes(data)
            if settled:
                _settle()
            assert ws.diff() == _gits_patch(ws)
        # Settled, most steps take no git process. Right after the writes, every file written within the
        # file-time granularity of the last scan must be read again, and one without a base is git's.
        assert ws.patches_without_git >= (20 if settled else 0)
    finally:
        ws.cleanup()


def test_a_tree_with_attributes_and_a_link_swapped_in_are_left_to_git(tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    body = ["import os", "", "def run():", *(f"    step_{k} = {k}" for k in range(30))]
    (repo / "a.py").write_bytes(_text(body))
    (repo / "other.txt").write_text("secret on the host\n")
    ws = _workspace_of(repo)
    try:
        for k in (5, 20):  # the second edit has a base to work from
            body[3 + k] = f"    step_{k} = -{k}"
            (ws.root / "a.py").write_bytes(_text(body))
            _settle()
            assert ws.diff() == _gits_patch(ws)
        made = ws.patches_without_git
        assert made >= 1
        # A link where a.py was: another shape, so git computes it; nothing is read through the link.
        os.replace(ws.root / "a.py", ws.root / "a.py.bak")
        os.symlink(repo / "other.txt", ws.root / "a.py")
        _settle()
        patch = ws.diff()
        assert patch == _gits_patch(ws) and "secret on the host" not in patch
        assert ws.patches_without_git == made
        assert ws._steps is not None and ws._steps._read("a.py") is None  # never read through a link
        os.unlink(ws.root / "a.py")
        os.replace(ws.root / "a.py.bak", ws.root / "a.py")
        # A `.gitattributes` may choose another diff driver (python: other hunk headers): git decides.
        (ws.root / ".gitattributes").write_text("*.py diff=python\n")
        _settle()
        ws.diff()
        for k in (8, 25):
            body[3 + k] = f"    step_{k} = {k * 100}"
            (ws.root / "a.py").write_bytes(_text(body))
            _settle()
            assert ws.diff() == _gits_patch(ws)
        assert ws.patches_without_git == made
    finally:
        ws.cleanup()


def test_the_bench_edit_pattern_takes_no_git_after_the_first_edit(tmp_path: Path) -> None:
    """sed -i on one line of a note, as the benchmark's steps do: git once, then in-process."""
    repo = tmp_path / "proj"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "p.txt").write_text("".join(f"line {i} of note: the fox\n" for i in range(40)))
    ws = _workspace_of(repo)
    try:
        runs = ws.git_runs
        for i in range(0, 30, 5):
            subprocess.run(
                ["sed", "-i", f"s/^line {i} of/line {i}* of/", "docs/p.txt"], cwd=ws.root, check=True
            )
            assert ws.diff() == _gits_patch(ws)
        assert ws.git_runs - runs == 1 and ws.patches_without_git == 5
        assert re.search(r"(?m)^\+line 25\* of", ws.diff())
    finally:
        ws.cleanup()
