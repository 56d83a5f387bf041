"""Removals in the background: done once wait_removed() returns, links never followed."""

from __future__ import annotations

import os
from pathlib import Path

from devloop.runtime.later import call_later, remove_later, wait_removed


def test_removed_by_the_time_the_run_waits(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    dirs = []
    for i in range(5):
        d = tmp_path / f"work{i}"
        (d / "tree" / "pkg").mkdir(parents=True)
        (d / "tree" / "pkg" / "a.py").write_text("a")
        os.symlink(outside, d / "tree" / "link")  # a model-made link: its target must survive
        dirs.append(d)
        remove_later(d)
    wait_removed()
    assert not any(d.exists() for d in dirs)
    assert (outside / "keep.txt").read_text() == "x"
    wait_removed()  # nothing queued: returns at once
    remove_later(dirs[0])  # a new thread after the last one ended; a missing dir is no error
    wait_removed()


def test_a_failing_job_does_not_stop_the_queue(tmp_path: Path) -> None:
    done = []

    def boom() -> None:
        raise OSError("no such thing")

    call_later(boom)
    call_later(lambda: done.append(1))
    wait_removed()
    assert done == [1]
