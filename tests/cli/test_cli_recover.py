"""A `devloop run` killed with SIGKILL: `devloop replay` shows what its trajectory holds and `devloop recover`
writes the result.json and patch.diff it could not; `replay` of something else says so in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_inprocess import run_devloop

from devloop.demo import make_demo_repo
from devloop.trajectory import Trajectory


def devloop(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, cwd=cwd, env=env)


def call(i: int, name: str, **args: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


def steps_written(trajectory: Path) -> int:
    if not trajectory.is_file():
        return 0
    lines = trajectory.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.startswith('{"type": "step"'))


@pytest.mark.slow
def test_kill_9_mid_run_then_replay_and_recover(tmp_path: Path) -> None:
    repo = make_demo_repo(tmp_path / "statkit")
    script = tmp_path / "slow.jsonl"
    script.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in (
                call(0, "execute_bash", command="echo first > first.txt"),
                call(1, "execute_bash", command="echo second >> first.txt"),
                call(2, "execute_bash", command="sleep 60; echo never > never.txt"),
                call(3, "finish", message="done"),
            )
        )
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devloop", "run", "--repo", str(repo), "--issue", "x",
         "--model", f"scripted/{script}", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        # Step 2's event is written when step 3's command starts: then the run is inside `sleep 60`.
        deadline = time.monotonic() + 120
        while steps_written(out / "trajectory.jsonl") < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the run did not reach its slow step"
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        still_going = devloop("recover", str(out))
        assert still_going.returncode == 2 and "still going" in still_going.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists() and not (out / "patch.diff").exists()

    replay = devloop("replay", str(out))
    assert replay.returncode == 0, replay.stderr
    assert "echo second >> first.txt" in replay.stdout and "no end after step 2" in replay.stdout
    assert f"devloop recover {out}" in replay.stdout

    done = devloop("recover", str(out))
    assert done.returncode == 0, done.stderr
    assert "interrupted after 2 steps" in done.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["exit_status"] == "interrupted" and result["recovered"] is True
    assert result["steps"] == 2 and result["model"] == f"scripted/{script}"
    assert result["prompt_tokens"] > 0 and result["patch_path"] == str(out / "patch.diff")
    patch = (out / "patch.diff").read_text()
    assert "+first" in patch and "+second" in patch and "never" not in patch
    assert subprocess.run(["git", "apply", "--check", "-"], cwd=repo, input=patch.encode()).returncode == 0

    again = devloop("recover", str(out))
    assert again.returncode == 2 and "nothing to recover" in again.stderr


def test_replay_of_what_is_not_a_trajectory_is_one_line_exit_2(tmp_path: Path) -> None:
    cases = {
        "notes.txt": "just some notes\n",
        "data.jsonl": '{"name": "a record"}\n{"name": "another"}\n',
        "list.json": "[1, 2, 3]\n",
        "empty.jsonl": "",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = devloop("replay", str(path))
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert str(path) in proc.stderr
        assert ("empty trajectory" if name == "empty.jsonl" else "not a devloop trajectory") in proc.stderr
    (tmp_path / "binary").write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 20)
    proc = devloop("replay", str(tmp_path / "binary"))
    assert proc.returncode == 2 and "not a devloop trajectory (not UTF-8 text)" in proc.stderr
    proc = devloop("recover", str(tmp_path))
    assert proc.returncode == 2 and "no trajectory.jsonl" in proc.stderr


def test_replay_does_not_cut_lines_at_the_terminal_width(tmp_path: Path) -> None:
    command = "echo " + " ".join(f"word{i}" for i in range(40)) + " END-OF-COMMAND"
    output = " ".join(f"out{i}" for i in range(60)) + " END-OF-OUTPUT"
    traj = Trajectory(tmp_path / "run" / "trajectory.jsonl")
    traj.write("start", model="m", repo="/r", settings={}, system="s", task="fix " * 40 + "END-OF-TASK")
    traj.write(
        "step",
        step=1,
        completion={"content": "I will look " * 20 + "END-OF-THOUGHT"},
        calls=[{"name": "execute_bash", "arguments": {"command": command}}],
        observations=[{"text": output}],
        usage={},
        timings={"model_s": 0.1},
        patch="",
    )
    traj.write("end", result={"exit_status": "finished", "steps": 1, "duration_s": 1.0})
    traj.close()
    proc = devloop("replay", str(tmp_path / "run"), env={**os.environ, "COLUMNS": "40"})
    assert proc.returncode == 0, proc.stderr
    assert f"$ {command}" in proc.stdout.splitlines()  # one line, whole
    assert "END-OF-THOUGHT" in proc.stdout
    for end in ("END-OF-TASK", "END-OF-OUTPUT"):  # panels wrap their text instead of cropping it
        assert end in proc.stdout
    assert all(len(line) <= 40 for line in proc.stdout.splitlines() if line.startswith("│"))
    assert "no end" not in proc.stdout
