"""Resume after a kill mid-protocol; Ray (started locally) gives the same report as the local pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from devloop.config import load_settings
from devloop.eval import LocalExecutor, ProtocolConfig, UnitStore, run_protocol

KILLABLE = """
import sys
from pathlib import Path
from devloop.config import load_settings
from devloop.eval import LocalExecutor, ProtocolConfig, run_protocol
from devloop.tasks import load_tasks
tasks = load_tasks(sys.argv[1]).tasks
settings = load_settings(model="openai/test", base_url=sys.argv[2], max_iterations=4)
run_protocol(tasks, settings, ProtocolConfig(name="iterative"), executor=LocalExecutor(2), run_id="k",
             output=Path(sys.argv[3]), cache_dir=Path(sys.argv[4]))
"""

PLAN = {"A": ["empty", "fix"], "B": ["fix"], "C": ["half", "empty", "fix"], "D": ["empty", "empty", "fix"]}


def _signature(result):
    sections = {k: v for k, v in result.sections.items() if k != "lost_units"}
    return result.report.model_dump(exclude={"duration_s"}), sections


@pytest.mark.slow
def test_kill_mid_protocol_then_resume(calc_task, serve, env_manager, env_cache, tmp_path):
    server = serve(PLAN)
    tasks = [calc_task(n) for n in PLAN]
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLABLE))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(task_file), server.url, str(out), str(env_cache)],
                            start_new_session=True)  # fmt: skip
    store = UnitStore(out, "k")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(store.instances.glob("*/attempts/*/unit.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in store.instances.glob("*/attempts/*/unit.json")}
    assert before, "the first run should have graded a unit before the kill"
    settings = load_settings(model="openai/test", base_url=server.url, max_iterations=4)
    result = run_protocol(tasks, settings, ProtocolConfig(name="iterative"), run_id="k", output=out,
                          cache_dir=env_cache)  # fmt: skip
    assert all(p.stat().st_mtime_ns == m for p, m in before.items())  # graded units are never redone
    assert result.report.resolved == 4 and not result.lost
    units = {t.instance_id: sorted(store.units(t.instance_id)) for t in tasks}
    assert units == {
        "calc__calc-A": [0, 1],
        "calc__calc-B": [0],
        "calc__calc-C": [0, 1, 2],
        "calc__calc-D": [0, 1, 2],
    }
    assert json.loads((store.root / "report.json").read_text())["resolved"] == 4


@pytest.mark.slow
def test_ray_gives_the_same_report_as_the_local_pool(calc_task, serve, env_manager, env_cache, tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'devloop[ray]')")
    from devloop.eval import RayExecutor

    tasks = [calc_task(n) for n in PLAN]
    results = []
    for name, make in (("local", lambda: LocalExecutor(2)), ("ray", lambda: RayExecutor(2))):
        server = serve(PLAN)
        settings = load_settings(model="openai/test", base_url=server.url, max_iterations=4)
        results.append(run_protocol(tasks, settings, ProtocolConfig(name="iterative"), executor=make(),
                                    run_id=name, output=tmp_path, cache_dir=env_cache))  # fmt: skip
    local, ray = (_signature(r) for r in results)
    assert local[1] == ray[1]
    assert {k: v for k, v in local[0].items() if k != "run_id"} == {
        k: v for k, v in ray[0].items() if k != "run_id"
    }
    assert local[0]["resolved"] == 4
