"""The agent's own git works inside the default sandbox, for a repository under a temp dir and under
HOME (both hidden by the sandbox): the clone's object store is shown read-only at its path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devloop.runtime.bwrap import probe_bwrap
from devloop.workspace import git

pytestmark = pytest.mark.skipif(
    probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}"
)

PROBE = "git status --short; git log --oneline | wc -l; git show HEAD:a.txt; git stash list | wc -l; echo probe-end"


def make_repo(parent: Path) -> Path:
    repo = Path(tempfile.mkdtemp(prefix="devloop-gitcheck-", dir=parent))
    (repo / "a.txt").write_text("one\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "a.txt").write_text("one\ntwo\n")  # uncommitted: replayed into the workspace
    return repo


@pytest.mark.parametrize("where", ["tmp", "home"])
def test_agent_git_works_in_the_default_sandbox(where: str, tmp_path: Path) -> None:
    parent = tmp_path if where == "tmp" else Path.home()
    repo = make_repo(parent)
    try:
        script = tmp_path / "script.jsonl"
        calls = [("execute_bash", {"command": PROBE}), ("finish", {"message": "done"})]
        script.write_text(
            "".join(
                json.dumps(
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": f"c{i}",
                                "type": "function",
                                "function": {"name": n, "arguments": json.dumps(a)},
                            }
                        ],
                    }
                )
                + "\n"
                for i, (n, a) in enumerate(calls)
            )
        )
        out = tmp_path / "out"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "devloop",
                "run",
                "--repo",
                str(repo),
                "--issue",
                "look",
                "--model",
                f"scripted/{script}",
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        steps = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
        start = next(e for e in steps if e.get("type") == "start")
        assert start["sandbox"] == "bwrap"
        seen = next(e for e in steps if e.get("type") == "step")["observations"][0]["text"]
        assert "fatal" not in seen and "probe-end" in seen
        assert seen.split("\n")[:3] == [" M a.txt", "1", "one"]
    finally:
        shutil.rmtree(repo, ignore_errors=True)
