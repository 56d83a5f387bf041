"""The one engine on given predictions, the run store, the agent's tree: report.json, per-instance verdicts,
one attempt layout, resume after a kill, workers, devloop 0.1 run directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from devloop.eval import Category, ProtocolConfig, ProtocolError, RunStore, Verdict, run_protocol
from devloop.eval.checkout import check_out
from devloop.eval.executors import LocalExecutor
from devloop.eval.rundata import load_run_data
from devloop.eval.taskbox import TaskBox
from devloop.runtime.bwrap import probe_bwrap
from devloop.tasks import Prediction, load_predictions


def _run(tasks, env_cache, tmp_path, predictions=None, workers=1):
    return run_protocol(
        tasks, None, ProtocolConfig(), predictions=predictions or load_predictions("gold", tasks), run_id="r1",
        output=tmp_path / "out", cache_dir=env_cache, executor=LocalExecutor(workers),
    ).report  # fmt: skip


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
                "resolved_ids", "unresolved_ids", "empty_patch_ids", "error_ids", "agent_error_ids"}  # fmt: skip
    assert required <= on_disk.keys()
    inst = root / "instances" / "calc__calc-1"
    verdict = json.loads((inst / "verdict.json").read_text())
    assert verdict["category"] == "resolved" and verdict["tests"]
    # One layout for every protocol: the attempt's logs beside its unit.json, named from the instance dir.
    assert (inst / verdict["logs"]["test"]).is_file() and verdict["logs"][
        "test"
    ] == "attempts/0/test_output.txt"
    unit = RunStore(tmp_path / "out", "r1").read_unit("calc__calc-1", 0)
    assert unit is not None and unit.verdict.category == Category.RESOLVED and unit.exit_status is None
    rows = [json.loads(line) for line in (root / "predictions.jsonl").read_text().splitlines()]
    assert {r["instance_id"] for r in rows} == {"calc__calc-1", "calc__calc-2"}
    assert (
        set(rows[0]) >= {"instance_id", "model_name_or_path", "model_patch"}
        and rows[0]["model_name_or_path"] == "gold"
    )


def test_resume_keeps_graded_attempts_and_ignores_stray_tmp_files(
    make_task, env_manager, env_cache, tmp_path
):
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2")]
    first = _run(tasks[:1], env_cache, tmp_path)
    store = RunStore(tmp_path / "out", "r1")
    unit = store.read_unit("calc__calc-1", 0)
    assert first.resolved == 1 and unit is not None
    # As a killed run leaves things: a half-written temporary file of the other instance's record.
    stray = store.unit_dir("calc__calc-2", 0) / ".unit.json.999.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_text('{"instance_id": "calc__calc-2", "categ')
    report = _run(tasks, env_cache, tmp_path)
    assert store.read_unit("calc__calc-1", 0) == unit  # not graded again
    assert report.resolved_ids == ["calc__calc-1", "calc__calc-2"]
    again = _run(tasks, env_cache, tmp_path)
    assert again.model_dump(exclude={"duration_s"}) == report.model_dump(exclude={"duration_s"})


def test_other_predictions_are_graded_afresh_on_resume(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task("calc__calc-1")]
    assert _run(tasks, env_cache, tmp_path).resolved == 1
    empty = {"calc__calc-1": Prediction(instance_id="calc__calc-1", model_name_or_path="e", model_patch="")}
    assert _run(tasks, env_cache, tmp_path, predictions=empty).empty_patch_ids == ["calc__calc-1"]


def test_missing_predictions_are_incomplete_not_graded(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2")]
    report = _run(tasks, env_cache, tmp_path, predictions=load_predictions("gold", tasks[:1]))
    assert report.incomplete_ids == ["calc__calc-2"] and report.total == 2 and report.resolved == 1
    assert not (tmp_path / "out" / "r1" / "instances" / "calc__calc-2" / "verdict.json").exists()


def test_exactly_one_of_settings_or_predictions(make_task, tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        run_protocol([make_task()], None, ProtocolConfig(), run_id="x", output=tmp_path)


def test_a_0_1_run_directory_loads_for_reports_and_refuses_resume_in_one_line(make_task, tmp_path):
    root = tmp_path / "out" / "old"
    store = RunStore(tmp_path / "out", "old")
    store.write_verdict(Verdict(instance_id="calc__calc-1", category=Category.RESOLVED))
    store.write_prediction(Prediction(instance_id="calc__calc-1", model_name_or_path="m", model_patch="p\n"))
    agent = store.instance_dir("calc__calc-1") / "agent"
    agent.mkdir()
    (agent / "result.json").write_text('{"exit_status": "finished", "steps": 3}')
    store.write_report(["calc__calc-1"])
    data = load_run_data(root)
    unit = data.units["calc__calc-1"][0]
    assert (unit.exit_status, unit.steps, unit.patch, unit.resolved) == ("finished", 3, "p\n", True)
    with pytest.raises(ProtocolError, match=r"made by devloop 0\.1 .*use a new --run-id") as info:
        run_protocol([make_task()], None, ProtocolConfig(), predictions=load_predictions("gold", [make_task()]),
                     run_id="old", output=tmp_path / "out")  # fmt: skip
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_process_pool_workers_grade_every_instance(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task(f"calc__calc-{i}") for i in range(3)]
    report = _run(tasks, env_cache, tmp_path, workers=2)
    assert report.resolved == 3 and report.incomplete_ids == []


KILLABLE = """
import sys
from pathlib import Path
from devloop.eval import LocalExecutor, ProtocolConfig, run_protocol
from devloop.tasks import load_tasks, load_predictions
tasks = load_tasks(sys.argv[1]).tasks
run_protocol(tasks, None, ProtocolConfig(), predictions=load_predictions("gold", tasks), run_id="k",
             output=Path(sys.argv[2]), cache_dir=Path(sys.argv[3]), executor=LocalExecutor(int(sys.argv[4])))
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
    private_tmp = tmp_path / "tmp"  # its own temp dir: what the killed run left there is seen whole
    private_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(private_tmp)}
    proc = subprocess.Popen([*args, "2"], start_new_session=True, env=env)
    store = RunStore(tmp_path / "out", "k")
    deadline = time.monotonic() + 60
    while not store.done_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = store.done_ids()
    assert 0 < len(first) < 4 or first == {t.instance_id for t in tasks}
    subprocess.run([*args, "1"], check=True, timeout=120, env=env)
    report = json.loads((store.root / "report.json").read_text())
    assert sorted(report["resolved_ids"]) == sorted(t.instance_id for t in tasks)
    assert len(list(store.instances.glob("*/verdict.json"))) == 4
    assert len(list(store.instances.glob("*/attempts/*/unit.json"))) == 4
    # The killed run's work dirs carried their owner: the resumed run removed them with its own.
    assert sorted(p.name for p in private_tmp.glob("devloop-*")) == []


@pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}")
def test_agent_tree_install_is_sandboxed_and_the_agent_env_holds_no_host_secret(
    make_task, env_manager, env_cache, spec, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-agent-host-secret")
    task = make_task(
        environment={**spec.model_dump(), "install": 'echo "key=$OPENAI_API_KEY uid=$(id -u)" > saw.txt'}
    )
    (tmp_path / "logs").mkdir()
    box = TaskBox(tmp_path / "agent", sandbox="bwrap", tree="repo")
    with box:
        env = check_out(task, box, env_manager, None, timeout=60.0, install_log=tmp_path / "logs" / "agent_install.log",
                        commit_base=True)  # fmt: skip
    tree = box.tree
    assert (tree / ".git").is_dir()
    assert set(env) == {"VIRTUAL_ENV", "PATH"}  # what the agent's sandbox adds to its scrubbed environment
    assert (tree / "saw.txt").read_text() == f"key= uid={(tree / 'saw.txt').stat().st_uid}\n"
    assert (tree / "saw.txt").stat().st_uid != 0  # the install ran as the sandbox user, never as root
    assert (tmp_path / "logs" / "agent_install.log").read_text().startswith("$ echo")
