"""The next grading's tree made while this one's tests run: the same verdicts as without, nothing of a
task run before its turn, nothing built ahead, nothing left behind, and the scheduler's hints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.eval import Category, ProtocolConfig, RunStore, run_protocol
from devloop.eval.attempt import AttemptJob, HarnessSettings
from devloop.eval.engine import _Ahead
from devloop.eval.executors import LocalExecutor
from devloop.eval.prefetch import Prefetcher
from devloop.runtime.bwrap import probe_bwrap
from devloop.runtime.later import wait_removed
from devloop.runtime.limits import Limits
from devloop.tasks import load_predictions


def _left(where: Path) -> list[str]:
    wait_removed()
    return sorted(p.name for p in where.glob("devloop-calc*"))


def _graded(tasks, env_cache, tmp_path, *, workers=1, prefetch=True, run_id="r"):
    run_protocol(tasks, None, ProtocolConfig(), predictions=load_predictions("gold", tasks), run_id=run_id,
                 output=tmp_path / "out", cache_dir=env_cache,
                 executor=LocalExecutor(workers, prefetch=prefetch))  # fmt: skip
    store = RunStore(tmp_path / "out", run_id)
    return {t.instance_id: store.read_verdict(t.instance_id) for t in tasks}


def test_each_grading_after_the_first_finds_its_tree_made_and_grades_the_same(
    make_task, env_manager, env_cache, tmp_path, tmpdir_of_workdirs
):
    tasks = [make_task(f"calc__calc-{i}") for i in range(3)]
    on = _graded(tasks, env_cache, tmp_path)
    off = _graded(tasks, env_cache, tmp_path, prefetch=False, run_id="off")
    assert [v.extra.get("prefetched") for v in on.values()] == [None, True, True]
    assert not any(v.extra.get("prefetched") for v in off.values())
    for iid, verdict in on.items():
        assert verdict.category == off[iid].category == Category.RESOLVED
        assert verdict.tests_status == off[iid].tests_status and verdict.tests == off[iid].tests
        assert verdict.extra["sandbox"] == off[iid].extra["sandbox"]
    # The staged phases are the staging's own: a prefetched grading's total counts what came after.
    assert {"env", "extract"} <= on["calc__calc-2"].timings.keys()
    assert _left(tmpdir_of_workdirs) == []


def test_nothing_of_the_next_task_runs_before_its_turn(make_task, env_manager, spec, env_cache, tmp_path,
                                                       tmpdir_of_workdirs):  # fmt: skip
    task = make_task("calc__calc-1", environment={**spec.model_dump(), "install": "echo built > out.txt"})
    job = AttemptJob(task, 0, None, HarnessSettings(tmp_path / "out", "r", env_cache), patch="p")
    ahead = Prefetcher()
    ahead.start(job)
    claimed = ahead.claim(job)
    assert claimed is not None
    staged, workdir = claimed
    tree = staged.box.tree
    assert tree.parent == workdir / "grade" and (tree / "calc.py").is_file()
    assert not (tree / "out.txt").exists()  # the install step is the grading's, in its turn
    assert (
        staged.box.venv.is_dir() and staged.box.venv.parent == workdir / "grade"
    )  # the clone it installs into
    staged.box.stop()
    # And graded in a run, both gradings of such a task install, the second in a prefetched tree.
    tasks = [make_task(f"calc__calc-{i}", environment=task.environment.model_dump()) for i in range(2)]
    verdicts = _graded(tasks, env_cache, tmp_path)
    assert [v.category for v in verdicts.values()] == [Category.RESOLVED] * 2
    assert verdicts["calc__calc-1"].extra.get("prefetched") is True
    assert verdicts["calc__calc-0"].extra["build_cache"] in ("filled", "reused")
    assert verdicts["calc__calc-1"].extra["build_cache"] == "reused"  # restored into the prefetched tree


def test_a_tree_staged_for_another_grading_is_ended_and_removed(make_task, env_manager, env_cache, tmp_path,
                                                                tmpdir_of_workdirs):  # fmt: skip
    h = HarnessSettings(tmp_path / "out", "r", env_cache)
    staged_for = AttemptJob(make_task("calc__calc-1"), 0, None, h, patch="p")
    ahead = Prefetcher()
    ahead.start(staged_for)
    item = ahead._ahead
    assert item is not None
    assert ahead.claim(AttemptJob(make_task("calc__calc-2"), 0, None, h, patch="p")) is None
    assert item.box is not None and item.box._runtime is None  # its sandbox was ended
    # The same instance with another patch (another prediction) is another grading too.
    ahead.start(staged_for)
    assert ahead.claim(AttemptJob(make_task("calc__calc-1"), 0, None, h, patch="q")) is None
    ahead.start(staged_for)
    ahead.discard()  # as the executor does when it closes
    assert ahead.claim(staged_for) is None
    assert _left(tmpdir_of_workdirs) == []


def test_a_venv_not_built_yet_is_not_built_ahead(make_task, spec, env_cache, tmp_path, tmpdir_of_workdirs):
    from devloop.eval.checkout import env_manager

    other = {**spec.model_dump(), "pip": [*spec.pip, "iniconfig==0.0.0-not-built"]}
    task = make_task("calc__calc-1", environment=other)
    job = AttemptJob(task, 0, None, HarnessSettings(tmp_path / "out", "r", env_cache), patch="p")
    ahead = Prefetcher()
    ahead.start(job)
    assert ahead.claim(job) is None
    manager = env_manager(env_cache)
    assert not manager.is_built(task.environment)
    assert not (env_cache / "venvs" / manager.key(task.environment)).exists()
    assert _left(tmpdir_of_workdirs) == []


def test_a_staging_that_fails_leaves_the_grading_to_report_it(make_task, env_manager, env_cache, tmp_path,
                                                              tmpdir_of_workdirs):  # fmt: skip
    tasks = [make_task("calc__calc-1"), make_task("calc__calc-2", base_commit="0" * 40)]
    on = _graded(tasks, env_cache, tmp_path)
    off = _graded(tasks, env_cache, tmp_path, prefetch=False, run_id="off")
    bad_on, bad_off = on["calc__calc-2"], off["calc__calc-2"]
    assert bad_on.category == bad_off.category == Category.ERROR
    assert bad_on.message == bad_off.message and "0000000000" in bad_on.message
    assert not bad_on.extra.get("prefetched")
    assert _left(tmpdir_of_workdirs) == []


@pytest.mark.slow
def test_pool_workers_stage_what_they_grade_next(
    make_task, env_manager, env_cache, tmp_path, tmpdir_of_workdirs
):
    tasks = [make_task(f"calc__calc-{i}") for i in range(6)]
    verdicts = _graded(tasks, env_cache, tmp_path, workers=2)
    assert all(v.category == Category.RESOLVED for v in verdicts.values())
    # The first grading of each worker has nothing staged; most of the rest find theirs.
    assert sum(bool(v.extra.get("prefetched")) for v in verdicts.values()) >= 2
    assert _left(tmpdir_of_workdirs) == []


def test_each_attempt_in_flight_stages_a_different_one_and_its_own_comes_next(make_task, tmp_path):
    h = HarnessSettings(tmp_path / "out", "r")
    jobs = {n: AttemptJob(make_task(f"calc__{n}"), 0, None, h, patch="p") for n in "abcde"}
    agent_job = AttemptJob(make_task("calc__x"), 0, None, h)  # an agent's: what is staged is its tree
    queue = deque((n, 0, jobs[n]) for n in "ab")
    queue.append(("x", 0, agent_job))
    queue.extend((n, 0, jobs[n]) for n in "cde")
    ahead = _Ahead(queue)
    first, second = queue.popleft(), queue.popleft()
    ahead.given["f1"] = ahead.hint(first[2])  # type: ignore[index]
    ahead.given["f2"] = ahead.hint(second[2])  # type: ignore[index]
    assert [ahead.given[f][0] for f in ("f1", "f2")] == ["x", "c"]  # type: ignore[index]
    hint = ahead.hint(agent_job)
    assert hint is not None and hint[0] == "d"  # an agent's attempt stages the next one too
    ahead.done("f2")  # type: ignore[arg-type]  # the second finished first: its worker gets c next
    assert [q[0] for q in queue] == ["c", "x", "d", "e"]
    ahead.done("f1")  # type: ignore[arg-type]
    assert [q[0] for q in queue] == ["x", "c", "d", "e"]


def test_eval_and_validate_take_no_prefetch(make_task, env_manager, env_cache, tmp_path, tmpdir_of_workdirs):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([make_task(f"calc__calc-{i}").model_dump(mode="json") for i in range(2)]))
    common = ["--tasks", str(tasks), "--cache-dir", str(env_cache), "--output", str(tmp_path / "runs")]
    for run_id, flags in (("on", []), ("off", ["--no-prefetch"])):
        done = CliRunner().invoke(app, ["eval", *common, "--predictions", "gold", "--run-id", run_id, *flags])
        assert done.exit_code == 0, done.output
        store = RunStore(tmp_path / "runs", run_id)
        second = store.read_verdict("calc__calc-1")
        assert second is not None and second.category == Category.RESOLVED
        assert second.extra.get("prefetched") is (True if run_id == "on" else None)
    done = CliRunner().invoke(app, ["validate", *common, "--run-id", "v", "--no-prefetch"])
    assert done.exit_code == 0, done.output
    assert _left(tmpdir_of_workdirs) == []


@pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}")
def test_the_tests_running_cannot_see_the_tree_staged_beside_them(make_task, env_manager, spec, env_cache,
                                                                  tmp_path, tmpdir_of_workdirs):  # fmt: skip
    # The first instance's tests look for the work dir staged for the second (made before they start).
    staged = f"{tmpdir_of_workdirs}/devloop-calc__calc-1-*"
    look = (f"sh -c 'for d in {staged}; do [ -e \"$d\" ] && {{ echo FAILED t::isolated; exit 0; }}; done; "
            "echo PASSED t::isolated'")  # fmt: skip
    looking = make_task("calc__calc-0", environment={**spec.model_dump(), "test_cmd": look},
                        FAIL_TO_PASS=["t::isolated"], PASS_TO_PASS=[])  # fmt: skip
    tasks = [looking, make_task("calc__calc-1")]
    for sandbox, seen in (("bwrap", False), ("none", True)):  # unconfined, the check does see it
        run_protocol(tasks, None, ProtocolConfig(), predictions=load_predictions("gold", tasks), run_id=sandbox,
                     output=tmp_path / "out", cache_dir=env_cache, executor=LocalExecutor(1),
                     confinement=(sandbox, Limits()))  # fmt: skip
        store = RunStore(tmp_path / "out", sandbox)
        first, second = store.read_verdict("calc__calc-0"), store.read_verdict("calc__calc-1")
        assert first is not None and second is not None and second.extra.get("prefetched") is True
        assert first.category == (Category.UNRESOLVED if seen else Category.RESOLVED), sandbox
    assert _left(tmpdir_of_workdirs) == []


STAGING_RUN = """
import sys
from pathlib import Path
from devloop.eval import LocalExecutor, ProtocolConfig, run_protocol
from devloop.tasks import load_tasks, load_predictions
tasks = load_tasks(sys.argv[1]).tasks
run_protocol(tasks, None, ProtocolConfig(), predictions=load_predictions("gold", tasks), run_id="k",
             output=Path(sys.argv[2]), cache_dir=Path(sys.argv[3]), executor=LocalExecutor(1))
"""


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(probe_bwrap() is not None, reason=f"bubblewrap is not usable: {probe_bwrap()}")
def test_a_run_killed_while_a_tree_is_staged_leaves_no_process(make_task, env_manager, spec, env_cache,
                                                               tmp_path):  # fmt: skip
    # The first instance's tests sleep: the second's sandbox is staged (and idle) when the run is killed,
    # the run's process alone (SIGKILL, not its group), as a crash or the OOM killer would.
    slow = make_task("calc__calc-0", environment={**spec.model_dump(), "test_cmd": "sleep 60; true"})
    tasks = [slow, make_task("calc__calc-1")]
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    script = tmp_path / "run.py"
    script.write_text(STAGING_RUN)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(task_file), str(tmp_path / "out"), str(env_cache)],
                            env={**os.environ, "TMPDIR": str(private_tmp)})  # fmt: skip
    staged = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dirs = list(private_tmp.glob("devloop-calc__calc-1-*"))
        if dirs and _processes_naming(str(dirs[0])):  # the staged sandbox is up
            staged = str(dirs[0])
            break
        time.sleep(0.05)
    try:
        assert staged, "the second instance's sandbox was never staged"
        assert _processes_naming(str(private_tmp))  # and the first's tests are running
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while _processes_naming(str(private_tmp)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_naming(str(private_tmp)) == []


def test_a_staged_box_is_ended_when_its_grading_stops_before_using_it(make_task, env_manager, env_cache,
                                                                      tmp_path, monkeypatch):  # fmt: skip
    import devloop.eval.grading as grading

    job = AttemptJob(make_task("calc__calc-1"), 0, None, HarnessSettings(tmp_path / "out", "r", env_cache),
                     patch="p")  # fmt: skip
    ahead = Prefetcher()
    ahead.start(job)
    claimed = ahead.claim(job)
    assert claimed is not None
    staged, workdir = claimed

    def broken(name):
        raise ValueError("bubblewrap stopped working")

    monkeypatch.setattr(grading, "grading_sandbox", broken)
    verdict = grading.grade(job.task, "p", env_manager=env_manager, mirrors=None, workdir=workdir / "grade",
                            staged=staged)  # fmt: skip
    assert verdict.category == Category.ERROR and "bubblewrap stopped working" in verdict.message
    assert staged.box._runtime is None  # its sandbox was ended all the same
