"""`devloop run --condense` against the scripted HTTP server with a small context window: a long run
compacts and finishes; a request the server refuses as too long is compacted and retried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devloop.condense import SUMMARY_REQUEST
from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.session import RunResult, run_agent
from devloop.workspace import git

STEPS = 24
WINDOW = 9000  # tokens as the server counts them (body bytes / 4)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "data.txt").write_text("".join(f"row {n}: some value here\n" for n in range(120)))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def script(replies: Any, summaries: int) -> list[dict[str, Any]]:
    """STEPS reads of a ~3 KB file, then finish; `summaries` answers to the summary request."""
    steps = [replies.bash(f"cat data.txt # {i}", i) for i in range(STEPS)]
    notes = [
        {"when": SUMMARY_REQUEST, "content": f"Summary {n}: read data.txt many times."}
        for n in range(summaries)
    ]
    return [*steps, replies.finish("read it all"), *notes]


def run(
    repo: Path, out: Path, entries: list[dict[str, Any]], **settings: Any
) -> tuple[RunResult, ScriptedServer]:
    with ScriptedServer(entries, context_window=WINDOW) as server:
        s = load_settings(model="openai/scripted", base_url=server.url, sandbox="none", **settings)
        result = run_agent(repo, "Read data.txt again and again.", s, out)
    return result, server


def condensed(out: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    return [c for e in events if e["type"] == "step" for c in e.get("condensed", [])]


def test_a_long_run_compacts_within_the_served_window_and_finishes(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    result, server = run(repo, tmp_path / "on", script(replies, 10), condense=True)
    assert result.exit_status == "finished", result.reason
    assert result.steps == STEPS + 1 and server.refused == 0
    summaries = [r for r in server.requests if SUMMARY_REQUEST in json.dumps(r)]
    records = condensed(tmp_path / "on")
    assert len(summaries) == len(records) >= 2 and {r["method"] for r in records} == {"summary"}
    assert all(size // 4 <= WINDOW for size in server.request_sizes)
    after = server.requests[server.requests.index(summaries[0]) + 1]["messages"]
    assert "Summary 0: read data.txt many times." in after[1]["content"]
    assert after[0] == server.requests[0]["messages"][0]  # the system prompt, verbatim
    # Without --condense the same run outgrows the window: the server refuses it.
    plain, refused = run(repo, tmp_path / "off", script(replies, 0))
    assert plain.exit_status == "model_error" and "maximum context length" in plain.reason
    assert refused.refused == 1


def test_a_request_the_server_refuses_as_too_long_is_compacted_and_retried(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    # The setting claims a window far larger than the server's: nothing triggers until the server refuses.
    result, server = run(repo, tmp_path / "out", script(replies, 10), condense=True, context_window=10**6)
    assert result.exit_status == "finished", result.reason
    assert server.refused == 1 and result.steps == STEPS + 1
    first = condensed(tmp_path / "out")[0]
    assert first["method"] == "summary" and first["tokens_after"] <= WINDOW // 2


def test_the_fallback_truncates_when_no_summary_comes(repo: Path, tmp_path: Path, replies: Any) -> None:
    faults = [{"when": SUMMARY_REQUEST, "fault": {"status": 400, "message": "bad"}} for _ in range(20)]
    result, server = run(repo, tmp_path / "out", [*script(replies, 0), *faults], condense=True)
    assert result.exit_status == "finished", result.reason
    assert server.refused == 0 and {r["method"] for r in condensed(tmp_path / "out")} == {"truncate"}


def test_the_cli_flag_condenses_and_a_bad_window_is_one_line(
    repo: Path, tmp_path: Path, replies: Any
) -> None:
    from cli_inprocess import run_devloop

    common = ["run", "--repo", repo, "--issue", "read it", "--model", "openai/scripted", "--sandbox", "none"]
    with ScriptedServer(script(replies, 10), context_window=WINDOW) as server:
        proc = run_devloop(
            [*common, "--base-url", server.url, "--condense", "--output", tmp_path / "o"], cwd=tmp_path
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert condensed(tmp_path / "o") and server.refused == 0
    with ScriptedServer([replies.finish()]) as server:  # lists no window: said once, and the run goes on
        proc = run_devloop(
            [*common, "--base-url", server.url, "--condense", "--output", tmp_path / "p"], cwd=tmp_path
        )
    assert proc.returncode == 0 and "lists no context window" in proc.stdout
    proc = run_devloop(
        [*common, "--base-url", "http://127.0.0.1:9/v1", "--context-window", "0"], cwd=tmp_path
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "context_window" in proc.stderr and "--context-window" in proc.stderr
