"""`devloop eval` on hostile task and predictions files: one `error: file:line: field: problem` line, exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_inprocess import run_devloop

GOOD = {"instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc", "problem_statement": "p",
        "FAIL_TO_PASS": ["t::x"]}  # fmt: skip


def devloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, cwd=cwd)


def test_bad_task_record_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    tasks = tmp_path / "bad.jsonl"
    # `[/]` would also be rich markup: the message must print as text, not crash the error printer.
    tasks.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "instance_id": "[/]../x"}) + "\n")
    proc = devloop("eval", "--tasks", str(tasks), "--predictions", "empty", "--strict", "--output",
                   str(tmp_path / "runs"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"error: {tasks}:2: instance_id: '[/]../x' contains '/': it must be a single path component"
    )
    assert "Traceback" not in proc.stdout + proc.stderr and not (tmp_path / "runs").exists()


def test_unsafe_records_alone_are_skipped_then_no_tasks_is_exit_2(tmp_path: Path) -> None:
    tasks = tmp_path / "bad.jsonl"
    patch = "--- a/../outside\n+++ b/../outside\n@@ -1 +1 @@\n-a\n+b\n"
    tasks.write_text(
        json.dumps({**GOOD, "instance_id": ".."}) + "\n" + json.dumps({**GOOD, "test_patch": patch}) + "\n"
    )
    proc = devloop("eval", "--tasks", str(tasks), "--predictions", "empty", "--output", str(tmp_path / "runs"),
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())  # the console may wrap long lines
    assert f"skipped {tasks}:1: instance_id: '..' names a directory, not an instance" in out
    assert f"skipped {tasks}:2: test_patch: path '../outside' has a '..' component" in out
    assert proc.stderr.strip() == "error: no tasks to evaluate"


def test_bad_prediction_id_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(GOOD) + "\n")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": "a__b-1", "model_patch": ""}) + "\n"
                     + json.dumps({"instance_id": "a\u0000b", "model_patch": ""}) + "\n")  # fmt: skip
    proc = devloop("eval", "--tasks", str(tasks), "--predictions", str(preds), "--output", str(tmp_path / "runs"),
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == f"error: {preds}:2: instance_id: 'a\\x00b' contains a NUL byte"
    assert "Traceback" not in proc.stdout + proc.stderr
