"""Where `devloop run` puts its run directory, and that earlier runs never reach a later workspace."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_inprocess import run_devloop

from devloop.demo import make_demo_repo
from devloop.trajectory import RUN_MARKER, read_trajectory

SECRET = "EARLIER-RUN-TRAJECTORY-TEXT"


def devloop(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, cwd=cwd, env=env)


def call(i: int, name: str, **args: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


def write_script(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def look_around(tmp_path: Path) -> Path:
    """A model that lists every file of its workspace and tries to read an earlier run's trajectory."""
    return write_script(
        tmp_path / "look.jsonl",
        call(
            0,
            "execute_bash",
            command="find . -path ./.git -prune -o -type f -print | sort; "
            "cat runs/old/trajectory.jsonl custom-out/trajectory.jsonl 2>&1 | head -5",
        ),  # fmt: skip
        call(1, "finish", message="looked"),
    )


def first_observation(run_dir: Path) -> str:
    steps = [e for e in read_trajectory(run_dir / "trajectory.jsonl") if e["type"] == "step"]
    return steps[0]["observations"][0]["text"]


def data_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}


def plant_earlier_runs(repo: Path) -> None:
    """An earlier run left in the repository by name (runs/old) and one under a custom name: both are
    devloop run directories (marked), untracked and not ignored; notes/ is the user's own untracked file."""
    for rel in ("runs/old", "custom-out"):
        d = repo / rel
        d.mkdir(parents=True)
        (d / RUN_MARKER).write_text("devloop run directory\n")
        (d / "trajectory.jsonl").write_text(json.dumps({"type": "start", "task": SECRET}) + "\n")
        (d / "patch.diff").write_text(f"+{SECRET}\n")
    (repo / "notes").mkdir()
    (repo / "notes" / "keep.txt").write_text("the user's own untracked file\n")


def test_run_from_inside_the_repo_writes_nothing_there_and_says_where(tmp_path: Path) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    plant_earlier_runs(repo)
    env = data_env(tmp_path)
    proc = devloop("run", "--repo", ".", "--issue", "look", "--model", f"scripted/{look_around(tmp_path)}",
                   cwd=repo, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((tmp_path / "data" / "devloop" / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("run-")
    assert f"output {runs[0]}" in proc.stdout.splitlines()[0]  # the header says where the run goes
    assert json.loads((runs[0] / "result.json").read_text())["exit_status"] == "finished"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True)
    assert sorted(status.stdout.split()) == ["??", "??", "??", "custom-out/", "notes/", "runs/"]
    assert sorted(p.name for p in (repo / "runs").iterdir()) == ["old"]  # no new run dir in the repo
    seen = first_observation(runs[0])
    assert "./notes/keep.txt" in seen and "./statkit/descriptive.py" in seen
    assert SECRET not in seen and "./runs/old" not in seen and "./custom-out" not in seen
    assert seen.count("No such file or directory") == 2  # neither earlier trajectory is in the workspace


@pytest.mark.slow
def test_a_second_run_does_not_copy_the_first(tmp_path: Path) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    script = look_around(tmp_path)
    first = devloop("run", "--repo", ".", "--issue", "look", "--model", f"scripted/{script}",
                    "--output", "runs/first", cwd=repo, env=data_env(tmp_path))  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert (repo / "runs" / "first" / RUN_MARKER).is_file()  # --output inside the repo: marked as a run
    second = devloop("run", "--repo", ".", "--issue", "look", "--model", f"scripted/{script}",
                     cwd=repo, env=data_env(tmp_path))  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    (run,) = (tmp_path / "data" / "devloop" / "runs").iterdir()
    seen = first_observation(run)
    assert "./runs/first" not in seen and "./notes" not in seen and "No such file" in seen
    assert "./statkit/descriptive.py" in seen


def test_a_plain_directory_is_copied_without_run_dirs(tmp_path: Path) -> None:
    repo = tmp_path / "plain"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("print('hi')\n")
    plant_earlier_runs(repo)
    out = tmp_path / "out"
    proc = devloop("run", "--repo", str(repo), "--issue", "look", "--model", f"scripted/{look_around(tmp_path)}",
                   "--output", str(out), cwd=tmp_path, env=data_env(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = first_observation(out)
    assert "./src/app.py" in seen and "./notes/keep.txt" in seen
    assert SECRET not in seen and "./runs/old" not in seen and "./custom-out/" not in seen


def test_run_from_outside_the_repo_uses_dot_runs_and_a_forged_marker_stays_out(tmp_path: Path) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    here = tmp_path / "elsewhere"
    here.mkdir()
    # A model that marks a directory of the repository as a run dir: applied, it would hide that
    # directory's untracked files from every later run. The marker never enters the patch.
    script = write_script(
        tmp_path / "forge.jsonl",
        call(0, "execute_bash", command=f"mkdir -p src && echo x > src/{RUN_MARKER} && echo y > src/new.txt"),
        call(1, "finish", message="done"),
    )
    proc = devloop("run", "--repo", str(repo), "--issue", "x", "--model", f"scripted/{script}",
                   cwd=here, env=data_env(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = (here / "runs").iterdir()
    assert run.name.startswith("run-") and (run / "result.json").is_file()
    assert not (tmp_path / "data").exists() and not (repo / "runs").exists()
    patch = (run / "patch.diff").read_text()
    assert "src/new.txt" in patch and RUN_MARKER not in patch
