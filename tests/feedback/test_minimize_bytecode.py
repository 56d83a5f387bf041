"""Switching candidates never lets the tests run a stale .pyc of the previous candidate."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path

from devloop.feedback.candidates import CandidateTree

PATCH = (
    "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "other.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def _run_add(root: Path) -> str:
    code = "import calc; print(calc.add(2, 3))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # it writes a .pyc
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True, env=env
    ).stdout


def test_a_same_size_candidate_in_the_same_second_runs_its_own_code(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    source = root / "calc.py"
    stamp = source.stat().st_mtime
    py_compile.compile(
        str(source), cfile=str(root / "__pycache__" / f"calc.{sys.implementation.cache_tag}.pyc")
    )
    py_compile.compile(
        str(root / "other.py"), cfile=str(root / "__pycache__" / f"other.{sys.implementation.cache_tag}.pyc")
    )
    assert _run_add(root) == "-1\n"
    tree = CandidateTree(root, None, "")  # type: ignore[arg-type]
    assert tree.switch(PATCH)
    os.utime(source, (stamp, stamp))  # the same size and the same mtime: what a quick switch gives
    assert _run_add(root) == "5\n"  # with the old .pyc kept, Python would still print -1
    assert (root / "__pycache__" / f"other.{sys.implementation.cache_tag}.pyc").exists()  # untouched file


def test_a_linked_pycache_is_not_followed(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    keep = elsewhere / f"calc.{sys.implementation.cache_tag}.pyc"
    keep.write_bytes(b"not ours")
    (root / "__pycache__").symlink_to(elsewhere, target_is_directory=True)
    assert CandidateTree(root, None, "").switch(PATCH)  # type: ignore[arg-type]
    assert keep.read_bytes() == b"not ours"


def test_a_directory_named_like_a_pyc_is_left_and_no_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    odd = root / "__pycache__" / f"calc.{sys.implementation.cache_tag}.pyc"
    odd.mkdir(parents=True)
    assert CandidateTree(root, None, "").switch(PATCH)  # type: ignore[arg-type]
    assert odd.is_dir()


def test_taking_the_patch_out_again_drops_the_patched_bytecode(tmp_path: Path) -> None:
    # The minimisation's first question: do the tests observe the same with no patch at all?
    root = _tree(tmp_path)
    tree = CandidateTree(root, None, "")  # type: ignore[arg-type]
    assert tree.switch(PATCH)
    source = root / "calc.py"
    stamp = source.stat().st_mtime
    assert _run_add(root) == "5\n"
    assert (root / "__pycache__" / f"calc.{sys.implementation.cache_tag}.pyc").exists()
    assert tree.switch("")
    os.utime(source, (stamp, stamp))
    assert _run_add(root) == "-1\n"  # with the patched .pyc kept, Python would still print 5
