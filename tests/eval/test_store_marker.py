"""An eval run directory is marked as devloop's, so a workspace made from a repository holding it (an eval
run under ./runs inside the repo) leaves it out: its tasks.jsonl holds gold patches."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devloop.eval.store import RunStore
from devloop.trajectory import is_run_dir
from devloop.workspace import Workspace


def test_an_eval_run_inside_a_repo_is_not_copied_into_a_workspace(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(repo), "add", "a.py"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
        check=True,
    )
    store = RunStore(repo / "runs", "r1")
    store.write_meta({"argv": ["eval"]})
    (store.root / "tasks.jsonl").write_text('{"patch": "the gold patch"}\n')
    assert is_run_dir(store.root)

    (tmp_path / "ws").mkdir()
    ws = Workspace.create(repo, parent=tmp_path / "ws")
    try:
        assert (ws.root / "a.py").exists()
        assert not (ws.root / "runs" / "r1").exists()
    finally:
        ws.cleanup()
