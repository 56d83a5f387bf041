"""`devloop run`'s words and files as a user meets them: real defaults in --help, `--no-X` beating a true
from the environment, a reused --output refused, --apply into a repository nested in another one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_inprocess import run_devloop

from devloop.demo import demo_script, make_demo_repo
from devloop.workspace import isolated_git_env

FLAGS_SET_TRUE = {
    "DEVLOOP_ALLOW_NETWORK": "true",
    "DEVLOOP_MINIMIZE": "true",
    "DEVLOOP_KEEP_WORKSPACE": "true",
}


def devloop(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, cwd=cwd, env=env)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any DEVLOOP_* the developer has set, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DEVLOOP_")} | extra


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(json.dumps(m) for m in demo_script("native")) + "\n")
    return path


def start_settings(out: Path) -> dict:
    """The settings the run really used, from its trajectory's start event."""
    start = json.loads((out / "trajectory.jsonl").read_text().splitlines()[0])
    assert start["type"] == "start"
    return start["settings"]


def test_help_shows_the_real_defaults_and_flags_take_no_value() -> None:
    proc = devloop("run", "--help", env=clean_env(COLUMNS="200", NO_COLOR="1"))
    assert proc.returncode == 0, proc.stderr
    line = {
        opt: next(ln for ln in proc.stdout.splitlines() if f" {opt} " in ln)
        for opt in ("--sandbox", "--apply", "--allow-network", "--minimize", "--keep-workspace")
    }
    assert "[default: auto]" in line["--sandbox"] and "none]" not in line["--sandbox"]
    for flag in ("--apply", "--allow-network", "--minimize", "--keep-workspace"):
        assert "<bool>" not in line[flag], line[flag]  # a flag shown with a metavar reads as taking a value


@pytest.mark.parametrize("command", [(), ("eval",), ("replay",), ("compare",), ("report",)])
def test_no_flag_in_any_help_reads_as_taking_a_value(command: tuple[str, ...]) -> None:
    proc = devloop(*command, "--help", env=clean_env(COLUMNS="200", NO_COLOR="1"))
    assert proc.returncode == 0, proc.stderr
    assert "--help" in proc.stdout and "<bool>" not in proc.stdout


@pytest.mark.parametrize(
    "flags, expected",
    [
        ((), True),  # the control: without flags the environment's true holds, so the case below can fail
        (("--no-network", "--no-minimize", "--no-keep-workspace"), False),
    ],
)
def test_no_flag_beats_a_true_from_the_environment(
    tmp_path: Path, script: Path, flags: tuple, expected: bool
) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    out = tmp_path / "out"
    devloop(
        "run",
        "--repo",
        str(repo),
        "--issue",
        "fix it",
        "--model",
        f"scripted/{script}",
        "--max-iterations",
        "1",
        "--output",
        str(out),
        *flags,
        cwd=tmp_path,
        env=clean_env(**FLAGS_SET_TRUE),
    )
    settings = start_settings(out)
    assert {k: settings[k] for k in ("allow_network", "minimize", "keep_workspace")} == dict.fromkeys(
        ("allow_network", "minimize", "keep_workspace"), expected
    )
    kept = json.loads((out / "result.json").read_text()).get("workspace")
    if expected and kept:  # the control kept its workspace, as asked: not ours to leave behind
        holder = Path(kept).parent  # the tree and devloop's git dir beside it
        assert holder.name.startswith("devloop-ws-")
        shutil.rmtree(holder, ignore_errors=True)


def test_reusing_an_output_directory_is_refused_in_one_line(tmp_path: Path, script: Path) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    out = tmp_path / "out"
    args = (
        "run",
        "--repo",
        str(repo),
        "--issue",
        "fix it",
        "--model",
        f"scripted/{script}",
        "--max-iterations",
        "1",
        "--output",
        str(out),
    )
    devloop(*args, cwd=tmp_path, env=clean_env())
    before = (out / "trajectory.jsonl").read_bytes()
    proc = devloop(*args, cwd=tmp_path, env=clean_env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and str(out) in proc.stderr and "already holds a run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "trajectory.jsonl").read_bytes() == before  # nothing appended


def test_apply_into_a_repository_nested_in_another_changes_the_users_file(
    tmp_path: Path, script: Path
) -> None:
    parent = tmp_path / "mono"
    parent.mkdir()
    repo = make_demo_repo(parent / "statkit")
    shutil.rmtree(repo / ".git")  # statkit is a plain directory of the parent repository, as in a monorepo

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=parent, env=isolated_git_env(), capture_output=True, text=True, check=True
        ).stdout

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    target = repo / "statkit" / "descriptive.py"
    assert "(data[middle - 1] + data[middle]) / 2" not in target.read_text()
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
        cwd=tmp_path,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "applied" in proc.stdout
    assert "(data[middle - 1] + data[middle]) / 2" in target.read_text()
    assert git("status", "--porcelain") == " M statkit/statkit/descriptive.py\n"  # that file, nothing else


def test_square_brackets_in_help_survive_rich_markup() -> None:
    proc = devloop("eval", "--help", env=clean_env(COLUMNS="200", NO_COLOR="1"))
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'devloop[ray]'" in proc.stdout  # not `pip install 'devloop'`


def test_help_stays_rich_after_the_commands_were_registered_on_app() -> None:
    # Tests that drive `app` with CliRunner call _register() first; in the same process (an xdist worker
    # that happened to run one earlier) the help tests above then read the plain-text copies, with the rich
    # escapes showing. This order, made on purpose, is the one that load-dependent scheduling produced.
    from devloop.cli import _register

    _register()
    test_help_shows_the_real_defaults_and_flags_take_no_value()
    test_square_brackets_in_help_survive_rich_markup()
    proc = devloop("eval", "--help", env=clean_env(COLUMNS="200", NO_COLOR="1"))
    assert "\\[default" not in proc.stdout
