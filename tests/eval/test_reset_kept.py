"""Test files put back from what the extraction kept give the same tree as reading the repository again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devloop.eval.source import extract_keeping, reset_to_base
from devloop.tasks.model import Task

_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
PATHS = ["tests/test_a.py", "tests/link.py", "tests/new_test.py"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=_ENV
    ).stdout.strip()


def _task(tmp_path: Path) -> Task:
    mirror = tmp_path / "o__r"
    (mirror / "tests").mkdir(parents=True)
    (mirror / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    (mirror / "tests" / "test_b.py").write_text("def test_b():\n    assert True\n")
    (mirror / "tests" / "run.sh").write_text("#!/bin/sh\n")
    (mirror / "tests" / "run.sh").chmod(0o755)
    (mirror / "tests" / "link.py").symlink_to("test_a.py")
    _git(mirror, "init", "-q")
    _git(mirror, "add", ".")
    _git(mirror, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    record = {"instance_id": "o__r-1", "repo": "o/r", "base_commit": _git(mirror, "rev-parse", "HEAD"),
              "problem_statement": "", "FAIL_TO_PASS": ["t"]}  # fmt: skip
    return Task.model_validate(record)


def _spoil(tree: Path, outside: Path) -> None:
    """What a model patch can do to the test paths: rewrite one, replace another by a link out of the
    tree, add a file that is not at base."""
    (tree / "tests" / "test_a.py").write_text("def test_a():\n    assert False\n")
    (tree / "tests" / "link.py").unlink()
    (tree / "tests" / "link.py").symlink_to(outside)
    (tree / "tests" / "new_test.py").write_text("x = 1\n")
    (tree / "tests" / "test_b.py").write_text("changed by the model, not a test path\n")


def _state(tree: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for path in sorted(tree.rglob("*")):
        rel = str(path.relative_to(tree))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_file():
            out[rel] = (oct(path.stat().st_mode & 0o777), path.read_text())
    return out


def test_kept_base_files_restore_what_the_repository_would(tmp_path):
    task = _task(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    kept_tree, base = extract_keeping(task, tmp_path, tmp_path / "kept", PATHS)
    again_tree, _ = extract_keeping(task, tmp_path, tmp_path / "again", PATHS)
    assert base.covers(PATHS) and not base.covers([*PATHS, "tests/other.py"])
    for tree in (kept_tree, again_tree):
        _spoil(tree, outside)
    reset_to_base(task, tmp_path, kept_tree, PATHS, base)
    reset_to_base(task, tmp_path, again_tree, PATHS)
    assert _state(kept_tree) == _state(again_tree)
    state = _state(kept_tree)
    assert state["tests/test_a.py"][1].endswith("assert True\n")
    assert state["tests/link.py"] == ("link", "test_a.py")
    assert "tests/new_test.py" not in state
    assert state["tests/test_b.py"][1].startswith("changed by the model")  # not a test path: left alone
    assert outside.read_text() == "host file\n"


def test_kept_files_are_used_without_the_repository(tmp_path):
    task = _task(tmp_path)
    tree, base = extract_keeping(task, tmp_path, tmp_path / "tree", PATHS)
    _spoil(tree, tmp_path / "outside.txt")
    (tmp_path / "o__r").rename(tmp_path / "moved")  # any read of the repository now fails
    reset_to_base(task, tmp_path, tree, PATHS, base)
    assert (tree / "tests" / "test_a.py").read_text().endswith("assert True\n")
    assert os.readlink(tree / "tests" / "link.py") == "test_a.py"


def test_a_test_path_that_is_a_directory_at_base_reads_the_repository(tmp_path):
    task = _task(tmp_path)
    tree, base = extract_keeping(task, tmp_path, tmp_path / "tree", ["tests"])
    assert not base.covers(["tests"])  # what is under it is the repository's to say
    (tree / "tests" / "test_a.py").write_text("spoilt\n")
    reset_to_base(task, tmp_path, tree, ["tests"], base)
    assert (tree / "tests" / "test_a.py").read_text().endswith("assert True\n")


def test_no_paths_and_only_new_test_files(tmp_path):
    task = _task(tmp_path)
    tree, base = extract_keeping(task, tmp_path, tmp_path / "tree", [])
    reset_to_base(task, tmp_path, tree, [], base)  # nothing to put back: no error
    tree2, base2 = extract_keeping(task, tmp_path, tmp_path / "tree2", ["tests/test_new.py"])
    (tree2 / "tests" / "test_new.py").write_text("written by the model\n")
    reset_to_base(task, tmp_path, tree2, ["tests/test_new.py"], base2)
    assert not (tree2 / "tests" / "test_new.py").exists()  # not at base: deleted, as before
