"""`devloop run`, `replay`, `demo` and `eval` as a user drives them: exit codes, files, one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_inprocess import run_devloop

from devloop.demo import demo_issue, demo_script, make_demo_repo


def devloop(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, cwd=cwd, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_demo_repo(tmp_path / "statkit")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in demo_script("native")) + "\n")
    return path


def test_run_finishes_writes_the_contract_files_and_exits_0(repo: Path, script: Path, tmp_path: Path) -> None:
    issue = tmp_path / "issue.md"
    issue.write_text(demo_issue())
    out = tmp_path / "out"
    proc = devloop(
        "run",
        "--repo",
        str(repo),
        "--issue-file",
        str(issue),
        "--model",
        f"scripted/{script}",
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "step   4" in proc.stdout and "finished" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["exit_status"] == "finished" and result["steps"] == 6
    if result["sandbox"] == "bwrap":  # the demo edits a file or two: the disk quota saw little growth
        assert 0 <= result["disk_peak_bytes"] < 1 << 20
    assert Path(result["patch_path"]).read_text().startswith("diff --git a/statkit/descriptive.py")
    assert (
        subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
        == ""
    )
    replay = devloop("replay", str(out / "trajectory.jsonl"))
    assert replay.returncode == 0 and "str_replace_editor" in replay.stdout and "finished" in replay.stdout


def test_run_that_stops_early_exits_1(repo: Path, script: Path, tmp_path: Path) -> None:
    proc = devloop(
        "run",
        "--repo",
        str(repo),
        "--issue",
        "fix it",
        "--model",
        f"scripted/{script}",
        "--max-iterations",
        "2",
        "--output",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 1
    assert json.loads((tmp_path / "out" / "result.json").read_text())["exit_status"] == "max_iterations"


def test_apply_writes_the_patch_into_the_users_tree(repo: Path, script: Path, tmp_path: Path) -> None:
    proc = devloop(
        "run",
        "--repo",
        str(repo),
        "--issue",
        "fix it",
        "--model",
        f"scripted/{script}",
        "--apply",
        "--output",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "(data[middle - 1] + data[middle]) / 2" in (repo / "statkit" / "descriptive.py").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--issue", "x", "--model", "openai/m"], "--base-url is required"),
        (["--issue", "x", "--issue-file", "f", "--model", "openai/m"], "exactly one of --issue"),
        (["--issue", "x"], "--model is required"),
        (["--issue", "x", "--model", "nosuch/m"], "unknown model"),
        (["--issue", "x", "--model", "scripted/missing.jsonl"], "missing.jsonl"),
        (
            ["--issue", "x", "--model", "openai/m", "--base-url", "http://x", "--tool-format", "yaml"],
            "tool_format",
        ),
        (
            ["--issue", "x", "--model", "openai/m", "--base-url", "http://x", "--max-iterations", "0"],
            "max_iterations",
        ),
        (
            ["--issue", "x", "--model", "openai/m", "--base-url", "http://x", "--disk-limit", "lots"],
            "not a positive size or none: 'lots' (use e.g. 10G, 512M, none) (flag --disk-limit)",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(repo: Path, tmp_path: Path, args: list[str], message: str) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DEVLOOP_")}
    proc = devloop("run", "--repo", str(repo), *args, "--output", str(tmp_path / "o"), cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) <= 3  # a one-line error (typer's own usage errors use a small box)


def test_missing_repo_is_a_usage_error(tmp_path: Path) -> None:
    proc = devloop("run", "--repo", str(tmp_path / "nope"), "--issue", "x", "--model", "openai/m")
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_dead_model_server_ends_with_model_error_and_a_saved_patch(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = devloop(
        "run",
        "--repo",
        str(repo),
        "--issue",
        "x",
        "--model",
        "openai/m",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--max-retries",
        "0",
        "--output",
        str(out),
    )
    assert proc.returncode == 1
    result = json.loads((out / "result.json").read_text())
    assert result["exit_status"] == "model_error" and "connection" in result["reason"]
    assert (out / "patch.diff").exists()


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = devloop("demo", "--output", str(tmp_path / "demo"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests after the patch" in proc.stdout and "OK" in proc.stdout


def test_help_is_complete_for_every_command() -> None:
    top = devloop("--help")
    assert top.returncode == 0
    for command in ("run", "eval", "replay", "demo"):
        assert command in top.stdout
        sub = devloop(command, "--help")
        assert sub.returncode == 0 and "Usage" in sub.stdout
    run_help = devloop("run", "--help").stdout
    for flag in (
        "--repo",
        "--issue-file",
        "--model",
        "--base-url",
        "--api-key-env",
        "--tool-format",
        "--temperature",
        "--max-iterations",
        "--output",
        "--disk-limit",
    ):
        assert flag in run_help
    assert "--disk-limit" in devloop("eval", "--help").stdout


def test_eval_rejects_a_bad_disk_limit_before_any_task(tmp_path: Path) -> None:
    proc = devloop("eval", "--suite", "builtin", "--predictions", "empty", "--disk-limit", "lots",
                   "--output", str(tmp_path / "runs"), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not a positive size or none: 'lots'" in proc.stderr and "--disk-limit" in proc.stderr
    assert not (tmp_path / "runs").exists()
