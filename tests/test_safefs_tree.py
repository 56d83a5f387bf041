"""remove_tree: the whole tree gone, whatever its shape, and nothing outside it touched through a link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.safefs.tree import PROBE, remove_tree


def _tree(root: Path, outside: Path) -> None:
    for i in range(4):
        (root / f"pkg{i}" / "sub" / "deep").mkdir(parents=True)
        (root / f"pkg{i}" / "sub" / "deep" / "f.txt").write_text("x")
        (root / f"pkg{i}" / "a.py").write_text("a")
    (root / "link-dir").symlink_to(outside, target_is_directory=True)  # a model-made link out of the tree
    (root / "pkg0" / "sub" / "link-file").symlink_to(outside / "keep.txt")
    (root / "pkg1" / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "pkg1" / "fifo")


@pytest.mark.parametrize("slow_s", [0.0, 10.0])  # threads at once / never
def test_removes_everything_and_follows_no_link(tmp_path: Path, slow_s: float) -> None:
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "ws"
    _tree(root, outside)
    assert sum(1 for _ in os.walk(root)) >= (PROBE + 2)  # more than the probe: threads take over
    remove_tree(root, slow_s=slow_s)
    assert not root.exists()
    assert (outside / "keep.txt").read_text() == "keep" and (outside / "inner").is_dir()


def test_a_small_tree_a_missing_path_and_a_link_as_the_root(tmp_path: Path) -> None:
    small = tmp_path / "small"
    (small / "out").mkdir(parents=True)
    (small / "out" / "log").write_text("x")
    remove_tree(small)
    assert not small.exists()
    remove_tree(tmp_path / "never-was")  # no error
    target = tmp_path / "target"
    for i in range((PROBE + 2) + 1):  # enough directories for the parallel path
        (target / f"d{i}" / "e").mkdir(parents=True)
    (tmp_path / "root-link").symlink_to(target, target_is_directory=True)
    remove_tree(tmp_path / "root-link", slow_s=0.0)  # as shutil.rmtree: a link is not a tree to remove
    assert all((target / f"d{i}" / "e").is_dir() for i in range((PROBE + 2) + 1))


def test_a_removal_queued_as_the_process_exits_still_removes_everything(tmp_path: Path) -> None:
    # A pool worker's last removal runs while its interpreter shuts down, when no thread pool takes
    # work any more: the directories are then removed one at a time, not left behind.
    root = tmp_path / "tree"
    for i in range(60):
        (root / f"d{i}" / "sub").mkdir(parents=True)
        (root / f"d{i}" / "sub" / "f").write_text("x")
    child = (
        "import sys\n"
        "from devloop.runtime.later import call_later\n"
        "from devloop.safefs.tree import remove_tree\n"
        "call_later(lambda: remove_tree(sys.argv[1], slow_s=0.0))\n"
    )
    subprocess.run([sys.executable, "-c", child, str(root)], check=True, timeout=60)
    assert not root.exists()
