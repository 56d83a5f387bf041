"""`devloop eval` on the built-in suite: gold 100 %, empty 0 % (all empty_patch), oracle 100 %, resume."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_inprocess import run_devloop


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return run_devloop(args)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def report(out: Path, run_id: str) -> dict:
    return json.loads((out / run_id / "report.json").read_text())


@pytest.mark.slow
def test_gold_resolves_every_builtin_task_and_a_rerun_resumes(cache: Path, tmp_path: Path) -> None:
    args = [
        "eval",
        "--suite",
        "builtin",
        "--predictions",
        "gold",
        "--workers",
        "2",
        "--cache-dir",
        str(cache),
        "--output",
        str(tmp_path),
        "--run-id",
        "gold",
    ]
    proc = devloop(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = report(tmp_path, "gold")
    assert rep["total"] >= 20 and rep["resolved"] == rep["total"] and rep["resolve_rate"] == 1.0
    verdict_file = next((tmp_path / "gold" / "instances").iterdir()) / "verdict.json"
    stamp = verdict_file.stat().st_mtime_ns
    again = devloop(*args)  # same run id: everything is already done
    assert again.returncode == 0 and verdict_file.stat().st_mtime_ns == stamp
    assert report(tmp_path, "gold")["resolved"] == rep["total"]
    preds = [json.loads(line) for line in (tmp_path / "gold" / "predictions.jsonl").read_text().splitlines()]
    assert {"instance_id", "model_name_or_path", "model_patch"} <= preds[0].keys()


def test_empty_patches_resolve_nothing(cache: Path, tmp_path: Path) -> None:
    proc = devloop(
        "eval",
        "--suite",
        "builtin",
        "--predictions",
        "empty",
        "--cache-dir",
        str(cache),
        "--output",
        str(tmp_path),
        "--run-id",
        "empty",
    )
    assert proc.returncode == 0, proc.stderr
    rep = report(tmp_path, "empty")
    assert rep["resolved"] == 0 and rep["empty_patch"] == rep["total"] >= 20
    assert len(set(rep["empty_patch_ids"])) == rep["total"] and rep["resolve_rate"] == 0.0


@pytest.mark.slow
def test_oracle_agent_resolves_every_builtin_task(cache: Path, tmp_path: Path) -> None:
    proc = devloop(
        "eval",
        "--suite",
        "builtin",
        "--model",
        "oracle",
        "--workers",
        "2",
        "--cache-dir",
        str(cache),
        "--output",
        str(tmp_path),
        "--run-id",
        "oracle",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = report(tmp_path, "oracle")
    assert rep["resolved"] == rep["total"] >= 20, rep["unresolved_ids"] + rep["error_ids"]
    some = next((tmp_path / "oracle" / "instances").iterdir())
    agent = json.loads((some / "attempts" / "0" / "agent" / "result.json").read_text())
    assert agent["exit_status"] == "finished" and agent["steps"] >= 3
    if shutil.which("bwrap"):  # the task's venv is usable inside the default sandbox
        assert agent["sandbox"] == "bwrap"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--predictions", "gold"], "exactly one of --tasks"),
        (["--suite", "builtin"], "exactly one of --predictions"),
        (
            ["--suite", "builtin", "--predictions", "gold", "--model", "oracle"],
            "exactly one of --predictions",
        ),
        (["--suite", "nosuch", "--predictions", "gold"], "unknown suite"),
        (["--tasks", "/nonexistent/tasks.json", "--predictions", "gold"], "/nonexistent/tasks.json"),
    ],
)
def test_bad_usage(args: list[str], message: str, cache: Path) -> None:
    proc = devloop("eval", *args, "--cache-dir", str(cache))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_instance_is_named(cache: Path) -> None:
    proc = devloop(
        "eval",
        "--suite",
        "builtin",
        "--predictions",
        "gold",
        "--instances",
        "nope-1",
        "--cache-dir",
        str(cache),
    )
    assert proc.returncode == 2 and "nope-1" in proc.stderr
