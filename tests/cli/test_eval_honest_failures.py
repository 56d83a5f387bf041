"""`devloop eval` says what went wrong: a dead model server is agent_error (counted, warned, exit 1,
redone on resume), a run id refuses other agent settings, a repository missing from --mirrors is named
with the command that gets it, and Ctrl-C says what is on disk and how to resume."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_inprocess import run_devloop

from devloop.models.scripted_server import ScriptedServer
from devloop.tasks import load_suite

TASK = "devloop__confetti-1"
DEAD = "http://127.0.0.1:9/v1"  # nobody listens on the discard port
FINISH = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"function": {"name": "finish", "arguments": {"message": "done"}}}],
}


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return run_devloop(args)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def agent_eval(
    cache: Path, out: Path, model: str, base_url: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return devloop("eval", "--suite", "builtin", "--instances", TASK, "--model", model, "--base-url", base_url,
                   "--max-retries", "0", "--tool-format", "native", "--cache-dir", str(cache), "--output", str(out),
                   "--run-id", "r", *extra)  # fmt: skip


def report(out: Path) -> dict:
    return json.loads((out / "r" / "report.json").read_text())


def test_dead_server_is_agent_error_exit_1_and_a_resume_redoes_it(cache: Path, tmp_path: Path) -> None:
    proc = agent_eval(cache, tmp_path, "openai/m", DEAD)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rep = report(tmp_path)
    assert rep["agent_error"] == 1 and rep["agent_error_ids"] == [TASK] and rep["empty_patch"] == 0
    assert rep["categories"]["agent_error"] == 1 and TASK in rep["error_ids"]
    assert "agent_error" in proc.stdout and DEAD in proc.stdout and "re-runs them" in proc.stdout
    assert "every instance failed in the agent" in proc.stderr and "Traceback" not in proc.stderr
    # Another model under the same run id: refused in one line.
    other = agent_eval(cache, tmp_path, "openai/other", DEAD)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "other agent settings" in other.stderr and "'openai/m' -> 'openai/other'" in other.stderr
    assert "--force-resume" in other.stderr and "Traceback" not in other.stderr
    # The same settings once the server is up (its URL is not part of them): the attempt is redone.
    with ScriptedServer([FINISH]) as server:
        again = agent_eval(cache, tmp_path, "openai/m", server.url)
    assert again.returncode == 0, again.stdout + again.stderr
    rep = report(tmp_path)
    assert rep["agent_error"] == 0 and rep["empty_patch_ids"] == [TASK]
    unit = json.loads((tmp_path / "r" / "instances" / TASK / "attempts" / "0" / "unit.json").read_text())
    assert unit["exit_status"] == "finished"


def test_force_resume_goes_on_under_other_settings(cache: Path, tmp_path: Path) -> None:
    assert agent_eval(cache, tmp_path, "openai/m", DEAD).returncode == 1
    with ScriptedServer([FINISH]) as server:
        proc = agent_eval(cache, tmp_path, "openai/other", server.url, "--force-resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report(tmp_path)["empty_patch_ids"] == [TASK]
    assert json.loads((tmp_path / "r" / "run.json").read_text())["settings"]["model"] == "openai/other"


def test_a_repository_missing_from_mirrors_is_named_with_how_to_get_it(cache: Path, tmp_path: Path) -> None:
    task = next(t for t in load_suite("builtin", cache / "suites") if t.instance_id == TASK)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        task.model_copy(update={"repo": "acme/widget", "repo_path": None}).model_dump_json() + "\n"
    )
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    proc = devloop("eval", "--tasks", str(tasks), "--mirrors", str(mirrors), "--predictions", "gold",
                   "--cache-dir", str(cache), "--output", str(tmp_path / "out"), "--run-id", "m")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repository acme/widget is missing" in proc.stdout
    assert f"git clone --mirror https://github.com/acme/widget {mirrors}/acme__widget" in proc.stdout


@pytest.mark.slow
def test_ctrl_c_says_what_is_on_disk_and_the_command_that_resumes(cache: Path, tmp_path: Path) -> None:
    # Eight tasks, one worker: once the first verdict is on disk, seven remain, so the interrupt cannot
    # arrive after the run has already finished (with three, a warm cache sometimes finished them all).
    names = ["confetti", "csvlite", "depgraph", "dotenvx", "eventbus", "globmatch", "jobq", "jsonptr"]
    ids = ",".join(f"devloop__{n}-1" for n in names)
    out = tmp_path / "out"
    args = ["eval", "--suite", "builtin", "--instances", ids, "--predictions", "gold", "--cache-dir", str(cache),
            "--output", str(out), "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "devloop", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(out.glob("*/instances/*/verdict.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    (run,) = list(out.iterdir())
    on_disk = len(list(run.glob("instances/*/verdict.json")))
    assert on_disk < 8 and f"interrupted: {on_disk} of 8 verdicts are on disk" in stdout, stdout
    command = stdout.split("resume with: ", 1)[1].strip().splitlines()[0]
    assert command.startswith("devloop eval ") and f"--run-id {run.name}" in command
    resumed = devloop(*shlex.split(command)[1:])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run / "report.json").read_text())["resolved"] == 8
    # The bar counts the verdicts on disk: a run with nothing left to do shows them all.
    assert "8/8" in devloop(*shlex.split(command)[1:]).stdout


def test_a_ctrl_c_dropped_where_it_landed_is_raised_again_at_the_next_verdict() -> None:
    # Python drops a KeyboardInterrupt raised inside an at-fork callback (printed as "Exception
    # ignored"); the latch makes the next check raise it all the same.
    from devloop.cli.interrupts import latched_interrupt

    before = signal.getsignal(signal.SIGINT)
    with latched_interrupt() as check:
        check()  # nothing yet
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # dropped, as an at-fork callback would
        with pytest.raises(KeyboardInterrupt):
            check()
    assert signal.getsignal(signal.SIGINT) is before
