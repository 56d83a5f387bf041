"""The agent cannot read its own run directory, an eval's other files (every task's gold patch) or the
mirrors (whose history holds the fix), even where those lie outside /tmp and HOME."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.runtime.bwrap import probe_bwrap
from devloop.session import run_agent
from devloop.workspace import git

pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}"),
]


def bash(i: int, command: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": f"c{i}",
                "type": "function",
                "function": {"name": "execute_bash", "arguments": json.dumps({"command": command})},
            }
        ],
    }


def test_run_dir_tasks_and_mirrors_are_hidden(visible_dir: Path, tmp_path: Path, escape) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    gold = f"gold-{secrets.token_hex(6)}"
    run_root, mirrors = visible_dir / "runs", visible_dir / "mirrors"
    (run_root / "run-1").mkdir(parents=True)
    (run_root / "run-1" / "tasks.jsonl").write_text(json.dumps({"patch": gold}) + "\n")
    (mirrors / "o__r").mkdir(parents=True)
    (mirrors / "o__r" / "FIX").write_text(gold)
    out = run_root / "run-1" / "instances" / "x" / "agent"
    probe = (
        f"cat {run_root}/run-1/tasks.jsonl {mirrors}/o__r/FIX 2>&1; ls -a {visible_dir} {run_root} 2>&1;"
        f" grep -rs {gold} / --include=*.jsonl 2>/dev/null | head -1; echo probe-done"
    )
    script = [
        bash(1, probe),
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "finish", "arguments": json.dumps({"message": "done"})},
                }
            ],
        },
    ]
    with ScriptedServer(script) as server:
        settings = load_settings(model="openai/test", base_url=server.url, sandbox="bwrap")
        run_agent(repo, "look around", settings, out, hide=(run_root, mirrors))
    seen = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    observed = next(e for e in seen if e.get("type") == "step")["observations"][0]["text"]
    assert "probe-done" in observed  # the probe ran
    listing = observed.split(f"{run_root}:")[1]
    with escape(
        "read an eval's tasks.jsonl (gold patches) beside the run dir", by="run directory hidden (tmpfs)"
    ):
        assert gold not in observed
        assert f"{run_root}/run-1/tasks.jsonl: No such file or directory" in observed
        assert "run-1" not in listing  # the run directory is an empty directory inside
    with escape("read the mirror's history (the fix)", by="mirrors hidden (tmpfs)"):
        assert f"{mirrors}/o__r/FIX: No such file or directory" in observed
