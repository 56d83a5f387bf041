"""The per-step patch skips git when nothing changed, and never misses a change a command made."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from trees import committed_repo, sh

from devloop.feedback.checkpoints import Checkpoints
from devloop.workspace import _GRANULARITY_NS, TOO_MANY, Workspace, scan_tree


def settle() -> None:
    """Wait until the last write is older than the file-time granularity, so a scan is trusted."""
    time.sleep(_GRANULARITY_NS / 1e9 + 0.005)


@pytest.fixture(params=["watched", "scanned"])
def ws(tmp_path: Path, request: pytest.FixtureRequest) -> Workspace:
    """The same tests with the tree's inotify watch vouching for quiet steps, and with a scan every step."""
    repo = committed_repo(tmp_path / "proj", {"a.py": "x = 1\n", "b.py": "b = 1\n", "pkg/m.py": "m = 1\n"})
    workspace = Workspace.create(repo)
    workspace.scans.watch_changes = request.param == "watched"
    # The copy's files are as new as the base scan taken at creation, which is then not trusted (a write
    # within the file-time granularity could hide): scan again once they are old enough, as a step would.
    settle()
    workspace.diff()
    yield workspace
    workspace.cleanup()


def step(ws: Workspace, script: str | None) -> tuple[str, int]:
    """Run a command in the workspace like a model's step, then take the patch; (patch, how many times
    it was computed: by a git run, or in-process from the files the step rewrote)."""
    if script is not None:
        sh(ws.root, script)
    settle()
    before = ws.git_runs + ws.patches_without_git
    return ws.diff(), ws.git_runs + ws.patches_without_git - before


def test_every_kind_of_change_is_in_the_patch_and_an_unchanged_step_runs_no_git(ws: Workspace) -> None:
    patch, runs = step(ws, None)
    assert (patch, runs) == ("", 0)  # the base snapshot's scan still holds: nothing to stage

    patch, runs = step(ws, "printf 'x = 2\\n' > a.py")  # in place: same inode
    assert "+x = 2" in patch and runs == 1
    assert step(ws, "cat a.py; ls -la; grep -r x .") == (patch, 0)  # reads only: no git

    patch, runs = step(ws, "printf 'n = 1\\n' > new.py")
    assert "new file mode" in patch and "+n = 1" in patch and runs == 1
    patch, _ = step(ws, "rm b.py")
    assert "deleted file mode" in patch and "-b = 1" in patch
    patch, _ = step(ws, "chmod +x a.py")
    assert "new mode 100755" in patch
    patch, _ = step(ws, "mv pkg/m.py pkg/n.py")
    assert "rename from pkg/m.py" in patch and "rename to pkg/n.py" in patch
    patch, _ = step(ws, "mkdir -p deep/er && printf 'd = 1\\n' > deep/er/d.py")
    assert "deep/er/d.py" in patch
    patch, _ = step(ws, "rm -r deep")
    assert "deep/er" not in patch
    patch, _ = step(ws, "ln -s a.py link.py")
    assert "new file mode 120000" in patch
    assert step(ws, "true") == (patch, 0)


def test_a_rewrite_keeping_size_and_mtime_is_seen_by_its_ctime(ws: Workspace) -> None:
    target = ws.root / "a.py"
    first, _ = step(ws, "printf 'x = 2\\n' > a.py")
    assert "+x = 2" in first
    mtime = target.stat().st_mtime_ns
    inode = target.stat().st_ino
    sh(ws.root, "printf 'x = 7\\n' > a.py")
    os.utime(target, ns=(mtime, mtime))  # as `touch -r` would: the old mtime back
    patch, runs = step(ws, None)
    st = target.stat()
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (inode, 6, mtime)  # only ctime tells
    assert runs == 1 and "+x = 7" in patch and "+x = 2" not in patch


def test_scratch_the_patch_excludes_does_not_make_a_step_run_git(ws: Workspace) -> None:
    patch, _ = step(ws, "printf 'x = 3\\n' > a.py")
    scratch = "mkdir -p pkg/__pycache__ .pytest_cache .devloop && touch pkg/__pycache__/m.pyc a.py.orig"
    assert step(ws, scratch) == (patch, 0)
    patch2, runs = step(ws, "printf 'p = 1\\n' > pkg/__pycache__.py")  # a look-alike is a real file
    assert runs == 1 and "pkg/__pycache__.py" in patch2


def test_a_scan_is_untrusted_right_after_a_write_or_past_its_limit(ws: Workspace) -> None:
    settle()
    assert scan_tree(ws.root) is not None
    assert scan_tree(ws.root, limit=2) == TOO_MANY
    (ws.root / "a.py").write_text("x = 5\n")
    assert scan_tree(ws.root) is None  # the same clock tick could hold a second write
    before = ws.git_runs
    assert "+x = 5" in ws.diff()
    assert ws.git_runs == before + 1


def test_the_scan_follows_no_link_and_fails_safe_on_an_unreadable_directory(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, ws.root / "out")
    settle()
    first = scan_tree(ws.root)
    (outside / "secret.txt").write_text("s\n")
    settle()
    assert first is not None and scan_tree(ws.root) == first  # the link's target is not walked
    locked = ws.root / "locked"
    locked.mkdir()
    locked.chmod(0)
    settle()
    try:
        if os.geteuid() != 0:  # root reads it anyway
            assert scan_tree(ws.root) is None
    finally:
        locked.chmod(0o755)


def test_a_checkpoint_reuses_the_steps_tree_and_a_restore_is_seen(ws: Workspace) -> None:
    checkpoints = Checkpoints(ws)
    patch, _ = step(ws, "printf 'x = 4\\n' > a.py")
    before = ws.git_runs
    cp = checkpoints.save(1, patch)
    assert ws.git_runs == before + 1  # tree, commit and ref in one process; no second staging
    assert cp.tree == ws.run_git("rev-parse", f"{cp.commit}^{{tree}}").strip()
    patch, _ = step(ws, "printf 'x = 5\\n' > a.py && rm b.py")
    assert "+x = 5" in patch
    checkpoints.restore(cp)
    after, runs = step(ws, None)
    assert runs == 1 and "+x = 4" in after and "b.py" not in after


def test_a_tree_over_the_scan_limit_is_left_to_git(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("devloop.workspace.changes.SCAN_LIMIT", 2)
    patch, runs = step(ws, None)
    # Watched, the kernel says nothing changed and no scan is taken; else the scan is over its limit: git.
    assert (patch, runs) == ("", 0 if ws.scans.watch_changes else 1)
    patch, runs = step(ws, "printf 'x = 8\\n' > a.py")
    assert "+x = 8" in patch and runs == 1
