"""`devloop eval --protocol ...` end to end through the command line, against a routed model server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_inprocess import run_devloop


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return run_devloop(args)


def test_eval_iterative_prints_the_attempt_table_and_writes_its_sections(calc_task, serve, env_manager, env_cache,
                                                                        tmp_path: Path):  # fmt: skip
    server = serve({"A": ["empty", "fix"], "B": ["fix"]})
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(calc_task(n).model_dump_json() + "\n" for n in "AB"))
    proc = devloop("eval", "--tasks", str(tasks), "--model", "openai/test", "--base-url", server.url,
                   "--protocol", "iterative", "--temperatures", "0,0.1,0.1", "--workers", "2",
                   "--cache-dir", str(env_cache), "--output", str(tmp_path / "out"), "--run-id", "cli")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Attempts (iterative protocol)" in proc.stdout and "resolved 2/2" in proc.stdout
    report = json.loads((tmp_path / "out" / "cli" / "report.json").read_text())
    assert report["resolved"] == 2 and report["protocol"]["name"] == "iterative"
    assert [r["attempted"] for r in report["attempts"]] == [2, 1, 0]
    assert (tmp_path / "out" / "cli" / "tasks.jsonl").read_text().count("\n") == 2
    assert server.temperatures("A") == [0.0, 0.1, 0.1, 0.1]
