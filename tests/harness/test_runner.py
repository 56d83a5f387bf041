"""run_eval and RunStore: report.json, per-instance verdicts, resume after a kill, workers, agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devloop.harness import Category, RunStore, Verdict, run_eval
from devloop.harness.runner import RunnerSettings, prepare_agent_tree
from devloop.runtime.bwrap import probe_bwrap
from devloop.tasks import Prediction, Task, load_predictions


def _run(tasks, env_cache, tmp_path, **kwargs):
    kwargs.setdefault("predictions", load_predictions("gold", tasks))
    return run_eval(
        tasks, run_id="r1", output=tmp_path / "out", cache_dir=env_cache, progress=False, **kwargs
    )


def test_run_writes_report_verdicts_and_predictions(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2")]
    preds = load_predictions("gold", tasks)
    preds["calc__calc-2"] = Prediction(instance_id="calc__calc-2", model_name_or_path="gold", model_patch="")
    report = _run(tasks, env_cache, tmp_path, predictions=preds)
    assert (report.total, report.resolved, report.empty_patch, report.completed) == (2, 1, 1, 1)
    assert report.resolved_ids == ["calc__calc-1"] and report.empty_patch_ids == ["calc__calc-2"]
    assert report.resolve_rate == 0.5
    root = tmp_path / "out" / "r1"
    on_disk = json.loads((root / "report.json").read_text())
    required = {"total", "completed", "resolved", "unresolved", "empty_patch", "error", "resolve_rate",
                "resolved_ids", "unresolved_ids", "empty_patch_ids", "error_ids"}  # fmt: skip
    assert required <= on_disk.keys()
    verdict = json.loads((root / "instances" / "calc__calc-1" / "verdict.json").read_text())
    assert verdict["category"] == "resolved" and verdict["tests"]
    assert (root / "instances" / "calc__calc-1" / "test_output.txt").is_file()
    rows = [json.loads(line) for line in (root / "predictions.jsonl").read_text().splitlines()]
    assert {r["instance_id"] for r in rows} == {"calc__calc-1", "calc__calc-2"}
    assert set(rows[0]) >= {"instance_id", "model_name_or_path", "model_patch"}


def test_resume_skips_finished_instances_and_ignores_stray_tmp_files(
    make_task, env_manager, env_cache, tmp_path
):
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2")]
    store = RunStore(tmp_path / "out", "r1")
    # As a killed run leaves things: one verdict written, one half-written temporary file.
    store.write_verdict(
        Verdict(instance_id="calc__calc-1", category=Category.UNRESOLVED, message="from before")
    )
    stray = store.instance_dir("calc__calc-2") / ".verdict.json.999.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"instance_id": "calc__calc-2", "categ')
    assert store.done_ids() == {"calc__calc-1"}
    report = _run(tasks, env_cache, tmp_path)
    assert store.read_verdict("calc__calc-1").message == "from before"  # not graded again
    assert report.resolved_ids == ["calc__calc-2"] and report.unresolved_ids == ["calc__calc-1"]
    again = _run(tasks, env_cache, tmp_path)
    assert again.model_dump(exclude={"duration_s"}) == report.model_dump(exclude={"duration_s"})


def test_missing_predictions_are_incomplete_not_graded(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2")]
    preds = load_predictions("gold", tasks[:1])
    report = _run(tasks, env_cache, tmp_path, predictions=preds)
    assert report.incomplete_ids == ["calc__calc-2"] and report.total == 2 and report.resolved == 1


def fake_agent(task: Task, workdir: Path, env: dict[str, str], out_dir: Path) -> str:
    """Applies the gold patch like an agent would, checking what the harness promises it."""
    assert (workdir / ".git").is_dir() and env["VIRTUAL_ENV"] in env["PATH"].split(os.pathsep)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text('{"exit_status": "finished"}')
    subprocess.run(["git", "apply", "-"], input=task.patch, text=True, cwd=workdir, check=True)
    tests = subprocess.run(
        ["pytest", "-q", "-p", "no:cacheprovider"], cwd=workdir, env=env, capture_output=True
    )
    assert tests.returncode == 0, tests.stdout  # the agent can run the tests with the task's venv
    return subprocess.run(["git", "diff"], cwd=workdir, capture_output=True, text=True, check=True).stdout


def broken_agent(task: Task, workdir: Path, env: dict[str, str], out_dir: Path) -> str:
    raise RuntimeError("model server unreachable")


def test_agent_mode_grades_the_agents_patch_and_keeps_its_run(make_task, env_manager, env_cache, tmp_path):
    report = _run([make_task()], env_cache, tmp_path, predictions=None, agent=fake_agent)
    assert report.resolved == 1, RunStore(tmp_path / "out", "r1").read_verdict("calc__calc-1")
    inst = tmp_path / "out" / "r1" / "instances" / "calc__calc-1"
    assert (inst / "agent" / "result.json").is_file()
    assert "return a + b" in json.loads((inst / "prediction.json").read_text())["model_patch"]


def test_agent_failure_is_an_error_verdict_not_a_crash(make_task, env_manager, env_cache, tmp_path):
    report = _run([make_task(), make_task(instance_id="calc__calc-9", environment=None)], env_cache, tmp_path,
                  predictions=None, agent=broken_agent)  # fmt: skip
    store = RunStore(tmp_path / "out", "r1")
    assert report.error_ids == ["calc__calc-1", "calc__calc-9"]
    assert "model server unreachable" in store.read_verdict("calc__calc-1").message
    assert store.read_verdict("calc__calc-9").category == Category.ENV_ERROR


def test_exactly_one_of_predictions_or_agent(make_task, tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        run_eval([make_task()], output=tmp_path, progress=False)


@pytest.mark.slow
def test_process_pool_workers_grade_every_instance(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task(f"calc__calc-{i}") for i in range(3)]
    report = _run(tasks, env_cache, tmp_path, workers=2)
    assert report.resolved == 3 and report.incomplete_ids == []


KILLABLE = """
import sys
from pathlib import Path
from devloop.harness import run_eval
from devloop.tasks import load_tasks, load_predictions
tasks = load_tasks(sys.argv[1]).tasks
run_eval(tasks, predictions=load_predictions("gold", tasks), run_id="k", output=Path(sys.argv[2]),
         cache_dir=Path(sys.argv[3]), workers=int(sys.argv[4]), progress=False)
"""


@pytest.mark.slow
def test_kill_9_then_resume_gives_exactly_one_verdict_per_instance(
    make_task, env_manager, env_cache, tmp_path
):
    tasks = [make_task(f"calc__calc-{i}") for i in range(4)]
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLABLE))
    args = [sys.executable, str(script), str(task_file), str(tmp_path / "out"), str(env_cache)]
    proc = subprocess.Popen([*args, "2"], start_new_session=True)
    store = RunStore(tmp_path / "out", "k")
    deadline = time.monotonic() + 60
    while not store.done_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = store.done_ids()
    assert 0 < len(first) < 4 or first == {t.instance_id for t in tasks}
    subprocess.run([*args, "1"], check=True, timeout=120)
    report = json.loads((store.root / "report.json").read_text())
    assert sorted(report["resolved_ids"]) == sorted(t.instance_id for t in tasks)
    verdicts = list(store.instances.glob("*/verdict.json"))
    assert len(verdicts) == 4


@pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}")
def test_agent_tree_install_is_sandboxed_and_the_agent_env_holds_no_host_secret(
    make_task, env_manager, env_cache, spec, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-agent-host-secret")
    task = make_task(
        environment={**spec.model_dump(), "install": 'echo "key=$OPENAI_API_KEY uid=$(id -u)" > saw.txt'}
    )
    settings = RunnerSettings(tmp_path / "out", "r1", env_cache, None, 60.0, False, "m", sandbox="bwrap")
    (tmp_path / "logs").mkdir()
    tree, env = prepare_agent_tree(task, settings, tmp_path / "agent", tmp_path / "logs")
    assert set(env) == {"VIRTUAL_ENV", "PATH"}  # what the agent's sandbox adds to its scrubbed environment
    assert (tree / "saw.txt").read_text() == f"key= uid={(tree / 'saw.txt').stat().st_uid}\n"
    assert (tree / "saw.txt").stat().st_uid != 0  # the install ran as the sandbox user, never as root
    assert (tmp_path / "logs" / "agent_install.log").read_text().startswith("$ echo")
