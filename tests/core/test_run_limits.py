"""A whole `run_agent` under `--disk-limit`, and what a run leaves for the next run's sweep."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.runtime.bwrap import probe_bwrap
from devloop.runtime.limits import MIB
from devloop.runtime.stale import OWNER_FILE, dead_owner
from devloop.session import run_agent
from devloop.workspace import Workspace, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def _run(repo: Path, out: Path, script: list[dict[str, Any]], **settings: Any):
    with ScriptedServer(script) as server:
        s = load_settings(model="openai/test", base_url=server.url, **settings)
        return run_agent(repo, "write files", s, out), server


@pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable here: {probe_bwrap()}")
def test_disk_limit_stops_the_command_and_the_model_is_told(repo: Path, tmp_path: Path, replies: Any) -> None:
    fill = replies.call(
        "execute_bash", 0, command="for i in 1 2 3 4 5 6; do head -c 8M /dev/zero > f$i.bin; done; sleep 20"
    )
    clean = replies.call("execute_bash", 1, command="rm f*.bin; echo cleaned")
    result, server = _run(
        repo, tmp_path / "out", [fill, clean, replies.finish()], sandbox="bwrap", disk_limit="20M"
    )
    assert result.exit_status == "finished"
    told = server.requests[1]["messages"][-1]["content"]
    assert "over its disk limit of 20 MiB" in told and "delete files" in told
    assert "cleaned" in server.requests[2]["messages"][-1]["content"]
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["disk_peak_bytes"] >= 20 * MIB


def test_a_kept_workspace_is_never_swept(repo: Path, tmp_path: Path, replies: Any) -> None:
    ws = Workspace.create(repo)
    holder = ws.gitdir.parent
    assert (holder / OWNER_FILE).is_file() and not dead_owner(holder)  # marked as this process's
    ws.cleanup()
    result, _ = _run(repo, tmp_path / "out", [replies.finish()], sandbox="none", keep_workspace=True)
    assert result.workspace is not None
    holder = Path(result.workspace).parent
    try:
        assert not (holder / OWNER_FILE).exists()  # disowned: kept on purpose
    finally:
        shutil.rmtree(holder)
