"""A step that only rewrote files the index already holds gets its patch from one git process (the work
tree against the base), byte for byte what staging everything and diffing the index gives."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from trees import committed_repo, sh

from devloop.workspace import (
    _ADD,
    _EXCLUDES,
    _GIT,
    _GRANULARITY_NS,
    Workspace,
    drop_binary_sections,
    isolated_git_env,
)


def settle() -> None:
    time.sleep(_GRANULARITY_NS / 1e9 + 0.005)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    files = {"a.py": "x = 1\ny = 2\nz = 3\n", "b.py": "b = 1\n", "pkg/m.py": "m = 1\n"}
    repo = committed_repo(tmp_path / "proj", files)
    workspace = Workspace.create(repo)
    settle()
    workspace.diff()
    yield workspace
    workspace.cleanup()


def staged_everything(ws: Workspace, *verbs: str) -> str:
    """What git says with everything staged afresh, in an index of its own (the workspace's is left as
    it is): `diff` gives the patch, `write-tree` the tree."""
    env = {**isolated_git_env(), "GIT_DIR": str(ws.gitdir), "GIT_WORK_TREE": str(ws.root)}
    env["GIT_INDEX_FILE"] = str(ws.gitdir.parent / "index.reference")
    run = lambda *args: subprocess.run(  # noqa: E731
        [*_GIT, *args], cwd=ws.root, env=env, capture_output=True, check=True
    ).stdout.decode(errors="replace")  # as Workspace decodes git's output
    run(*_ADD)
    if verbs == ("write-tree",):
        return run("write-tree").strip()
    diff = ["diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all"]
    return drop_binary_sections(run(*diff, ws.base, "--", ".", *_EXCLUDES))


def step(ws: Workspace, script: str) -> tuple[str, bool]:
    """Run `script` as a model's command would, then the step's patch; (patch, whether it was staged)."""
    sh(ws.root, script)
    settle()
    patch = ws.diff()
    assert ws._known is not None
    return patch, ws._known.staged


@pytest.mark.parametrize(
    ("script", "staged"),
    [
        ("printf 'x = 1\\ny = 20\\nz = 3\\n' > a.py", False),  # in place, same inode
        ("sed -i 's/b = 1/b = 2/' b.py", False),  # sed -i: a new inode under the same name
        ("printf 'b = 2' > b.py", False),  # no newline at the end of the file
        ("printf 'm = caf\\351\\n' > pkg/m.py", False),  # not UTF-8
        ("printf 'x\\000\\001\\002' > a.py", False),  # binary: left out of both
        ("printf 'n = 1\\n' > new.py", True),  # a new path: staged
        ("rm b.py", True),  # a path gone: staged
        ("chmod +x a.py", True),  # a mode changed: staged
        ("rm -r pkg && printf 'p\\n' > pkg", True),  # a directory became a file
        ("printf '*.log\\n' > .gitignore && printf 'l\\n' > x.log", True),
    ],
)
def test_each_kind_of_change_gives_the_staged_patch_byte_for_byte(
    ws: Workspace, script: str, staged: bool
) -> None:
    patch, was_staged = step(ws, script)
    assert was_staged is staged
    assert patch == staged_everything(ws)
    # every script changes something the patch shows, but the binary one (its section is left out)
    assert bool(patch) is ("\\000" not in script)


def test_a_sequence_of_steps_and_checkpoints_agree_with_staging_everything(ws: Workspace) -> None:
    sh(ws.root, "printf '*.log\\n' > .gitignore && printf 'l\\n' > x.log")
    settle()
    ws.diff()
    for script, staged in [
        ("printf 'x = 5\\n' >> a.py", False),
        ("printf 'n\\n' > new.py", True),
        ("printf 'n2\\n' >> new.py", False),  # the index holds new.py now
        ("printf 'b\\n' >> b.py && printf '' > .gitignore", True),  # x.log is no longer ignored
        ("printf 'l2\\n' >> x.log", False),
    ]:
        patch, was_staged = step(ws, script)
        assert (was_staged, patch) == (staged, staged_everything(ws)), script
    # A checkpoint after a step that did not stage stages now: its tree is everything's.
    sh(ws.root, "printf 'x = 6\\n' >> a.py")
    settle()
    assert ws.diff() == staged_everything(ws) and ws._known is not None and not ws._known.staged
    tree, _ = ws.commit_snapshot([], "checkpoint", "refs/devloop/cp")
    assert tree == staged_everything(ws, "write-tree") == ws.snapshot()
    # And after a snapshot the index is fresh again: the next content-only step needs no staging.
    sh(ws.root, "printf 'x = 7\\n' >> a.py")
    settle()
    assert ws.diff() == staged_everything(ws) and not ws._known.staged
    assert ws.snapshot() == staged_everything(ws, "write-tree")


def test_a_git_command_other_than_the_patch_makes_the_next_patch_stage(ws: Workspace) -> None:
    ws.run_git("read-tree", ws.base)  # anything may have written the index
    os.utime(ws.root / "a.py")
    sh(ws.root, "printf 'x = 9\\n' > a.py")
    settle()
    patch = ws.diff()
    assert ws._known is not None and ws._known.staged and patch == staged_everything(ws)


def test_a_clean_clones_base_is_heads_tree_and_a_dirty_ones_holds_the_changes(tmp_path: Path) -> None:
    repo = tmp_path / "user"
    repo.mkdir()
    (repo / "a.py").write_text("a = 1\n")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "x.log").write_text("ignored\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    sh(repo, "git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
    head = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=repo, capture_output=True, text=True)
    clean = Workspace.create(repo)  # no change on top of HEAD: its tree, no staging
    try:
        assert clean.base == head.stdout.strip() and clean.diff() == ""
        settle()
        assert clean.snapshot() == staged_everything(clean, "write-tree") == clean.base
    finally:
        clean.cleanup()
    (repo / "new.py").write_text("n = 1\n")  # an untracked file: the base is staged and holds it
    dirty = Workspace.create(repo)
    try:
        assert dirty.base != head.stdout.strip()
        assert dirty.base == staged_everything(dirty, "write-tree")
    finally:
        dirty.cleanup()
