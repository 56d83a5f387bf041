"""The agent's tree as one commit made from the mirror's objects, and the workspace that borrows them: no
object file per tree file, the base as the tree stood after its install step, and a model's `.git` that
cannot touch either."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devloop.eval.checkout import check_out
from devloop.eval.taskbox import TaskBox
from devloop.runtime.bwrap import probe_bwrap
from devloop.workspace import Workspace

pytestmark = pytest.mark.skipif(probe_bwrap() is not None, reason="the agent's tree is checked out in bwrap")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _loose(objects: Path) -> int:
    """Loose object files in an object store."""
    return sum(1 for d in objects.iterdir() if len(d.name) == 2 for _ in d.iterdir())


def _checked_out(task, env_manager, tmp_path: Path) -> TaskBox:
    box = TaskBox(tmp_path / "agent", sandbox="bwrap", tree="repo")
    with box:
        check_out(
            task, box, env_manager, None, timeout=60.0, install_log=tmp_path / "install.log", commit_base=True
        )
    return box


def test_the_tree_is_one_commit_of_the_mirrors_objects_and_its_workspace_hashes_only_what_changed(
    make_task, spec, env_manager, calc_repo, tmp_path
):
    repo, base = calc_repo
    task = make_task(
        environment={**spec.model_dump(), "install": "mkdir -p build && echo made > build/out.txt"}
    )
    box = _checked_out(task, env_manager, tmp_path)
    tree, seed = box.tree, box.git_seed
    assert seed is not None
    assert _git(tree, "rev-parse", "HEAD^{tree}") == _git(repo, "rev-parse", f"{base}^{{tree}}")
    assert _git(tree, "log", "--format=%s") == f"base {base}"  # one commit, none of the mirror's history
    assert _loose(tree / ".git" / "objects") == 1  # the commit itself: the files' objects came as one pack
    assert _git(tree, "status", "--porcelain") == "?? build/"  # the install's output, not the base's
    # The seed is the host's, beside the tree (where the agent's sandbox does not bind), not the sandbox user's.
    assert not seed.objects.is_relative_to(tree) and not seed.index.is_relative_to(tree)
    assert {seed.objects.stat().st_uid, seed.index.stat().st_uid} == {os.getuid()}

    ws = Workspace.create(tree, in_place=True, seed=seed)
    try:
        assert _loose(ws.gitdir / "objects") <= 3  # build/out.txt's blob and the trees above it
        assert ws.read_only_paths == [seed.objects]  # shown read-only to the sandbox its git runs in
        assert ws.diff() == ""  # the base is the tree after its install step
        # The model's own `.git` is not the base's: removing it takes nothing away from the patch.
        subprocess.run(["rm", "-rf", str(tree / ".git")], check=True)
        (tree / "calc.py").write_text((tree / "calc.py").read_text().replace("a - b", "a + b"))
        patch = ws.diff()
        assert patch.startswith("diff --git a/calc.py b/calc.py") and "+    return a + b" in patch
        assert "build/" not in patch
    finally:
        ws.cleanup()


def test_a_tree_unlike_its_commit_is_committed_as_extracted_and_hashed_by_its_workspace(
    make_task, env_manager, tmp_path
):
    # git archive rewrites an export-subst file: the commit's objects do not describe the extracted tree.
    repo = tmp_path / "subst"
    repo.mkdir()
    (repo / ".gitattributes").write_text("version.txt export-subst\n")
    (repo / "version.txt").write_text("$Format:%H$\n")
    (repo / "a.py").write_text("x = 1\n")
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "b"],
    ):
        _git(repo, *args)
    base = _git(repo, "rev-parse", "HEAD")
    task = make_task(
        "subst__subst-1", repo="subst/subst", base_commit=base, repo_path=str(repo), test_patch=""
    )
    box = _checked_out(task, env_manager, tmp_path)
    assert box.git_seed is None
    assert (box.tree / "version.txt").read_text() == f"{base}\n"
    assert _git(box.tree, "status", "--porcelain") == ""  # committed as extracted
    ws = Workspace.create(box.tree, in_place=True, seed=box.git_seed)
    try:
        assert ws.diff() == ""
        (box.tree / "a.py").write_text("x = 2\n")
        assert "+x = 2" in ws.diff()
    finally:
        ws.cleanup()
