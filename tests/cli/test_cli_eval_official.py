"""`devloop eval` on official-style records: environments from the official table, and --grading rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_devloop


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return run_devloop(args)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def skip_task(tmp_path: Path) -> Path:
    """One task whose tests print a log where one FAIL_TO_PASS test passes and the other is SKIPPED."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("old\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.txt").write_text("new\n")
    gold = git(repo, "diff")
    git(repo, "checkout", "-q", "--", "a.txt")
    log = "PASSED tests/test_a.py::test_one\\nSKIPPED tests/test_a.py::test_two\\n"
    record = {
        "instance_id": "own__own-1",
        "repo": "own/own",
        "base_commit": base,
        "problem_statement": "",
        "patch": gold,
        "FAIL_TO_PASS": ["tests/test_a.py::test_one", "tests/test_a.py::test_two"],
        "repo_path": str(repo),
        "environment": {
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "test_cmd": f"printf '{log}'",
            "log_parser": "pytest",
        },
    }
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([record]))
    return path


def test_grading_rules_decide_a_skipped_fail_to_pass_test(skip_task: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "runs", tmp_path / "cache"
    resolved = {}
    for rules in ("swebench4", "swebench5"):
        proc = devloop("eval", "--tasks", str(skip_task), "--predictions", "gold", "--output", str(out),
                       "--run-id", rules, "--cache-dir", str(cache), "--grading", rules, "--sandbox", "none")  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads((out / rules / "report.json").read_text())
        assert report["grading"] == rules
        assert json.loads((out / rules / "run.json").read_text())["grading"] == rules
        resolved[rules] = report["resolved"]
    # swebench4 leaves the skipped test out of the ratio; swebench5 counts it as failed (PARTIAL).
    assert resolved == {"swebench4": 1, "swebench5": 0}
    verdict = json.loads((out / "swebench5" / "instances" / "own__own-1" / "verdict.json").read_text())
    assert verdict["resolution"] == "PARTIAL" and verdict["extra"]["grading"] == "swebench5"


def test_unknown_grading_rules_are_refused(skip_task: Path, tmp_path: Path) -> None:
    proc = devloop("eval", "--tasks", str(skip_task), "--predictions", "gold", "--grading", "swebench9",
                   "--output", str(tmp_path / "runs"))  # fmt: skip
    assert proc.returncode == 2
    assert "--grading: unknown rules 'swebench9'" in proc.stderr and "Traceback" not in proc.stderr


def test_official_records_get_environments_or_name_what_is_missing(tmp_path: Path) -> None:
    lite = json.loads((Path(__file__).parents[1] / "fixtures" / "swebench_lite_envs.json").read_text())[
        "records"
    ]
    by_id = {r["instance_id"]: r for r in lite}
    records = [
        {**by_id[i], "base_commit": "0" * 40, "problem_statement": "", "FAIL_TO_PASS": ["t"]}
        for i in ("django__django-15202", "sympy__sympy-14774")
    ]
    tasks = tmp_path / "lite.json"
    tasks.write_text(json.dumps(records))
    preds = tmp_path / "preds.jsonl"
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"
    preds.write_text(json.dumps({"instance_id": "django__django-15202", "model_patch": patch}) + "\n")
    out = tmp_path / "runs"
    proc = devloop("eval", "--tasks", str(tasks), "--predictions", str(preds), "--output", str(out),
                   "--run-id", "r", "--instances", "django__django-15202", "--sandbox", "none")  # fmt: skip
    text = " ".join((proc.stdout + proc.stderr).split())
    # Counted over the tasks --instances keeps.
    assert "0 task(s) got an environment from the official SWE-bench table; 1 cannot" in text
    assert "1 x the requirements file (tests/requirements/py3.txt)" in text
    verdict = json.loads((out / "r" / "instances" / "django__django-15202" / "verdict.json").read_text())
    assert verdict["category"] == "env_error"
    assert "tests/requirements/py3.txt" in verdict["message"]


def test_environment_overrides_patch_a_task_and_bad_files_are_refused(
    skip_task: Path, tmp_path: Path
) -> None:
    log = "PASSED tests/test_a.py::test_one\\nPASSED tests/test_a.py::test_two\\n"
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps({"own__own-1": {"test_cmd": f"printf '{log}'"}}))
    out = tmp_path / "runs"
    proc = devloop("eval", "--tasks", str(skip_task), "--predictions", "gold", "--output", str(out), "--run-id",
                   "o", "--cache-dir", str(tmp_path / "cache"), "--grading", "swebench5", "--sandbox", "none",
                   "--environment-overrides", str(overrides))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 patched by --environment-overrides" in " ".join(proc.stdout.split())
    assert json.loads((out / "o" / "report.json").read_text())["resolved"] == 1  # test_two now passes
    overrides.write_text(json.dumps({"own__own-1": {"log_parser": "nose"}}))
    proc = devloop("eval", "--tasks", str(skip_task), "--predictions", "gold", "--output", str(out),
                   "--environment-overrides", str(overrides))  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--environment-overrides: {overrides}: own__own-1: log_parser:" in " ".join(proc.stderr.split())
