"""With several workers the longest instances (by earlier runs' durations) start first."""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

from devloop.eval import ProtocolConfig, durations, run_protocol
from devloop.tasks import load_predictions


class Recording:
    """Runs jobs inline, as one worker would, but offers two slots: the submission order is recorded."""

    capacity = 2

    def __init__(self) -> None:
        self.order: list[str] = []

    def submit(self, fn: Any, arg: Any) -> Future[Any]:
        self.order.append(arg.task.instance_id)
        future: Future[Any] = Future()
        future.set_result(fn(arg))
        return future

    def close(self, cancel: bool = False) -> None:
        pass


def _run(tasks, cache, tmp_path, executor, name):
    return run_protocol(
        tasks, None, ProtocolConfig(), predictions=load_predictions("gold", tasks), run_id=name,
        output=tmp_path / "out", cache_dir=cache, executor=executor,
    ).report  # fmt: skip


def test_a_second_run_starts_the_longest_known_instance_first(make_task, env_manager, env_cache, tmp_path):
    tasks = [make_task(f"calc__calc-{i}") for i in range(3)]
    first = Recording()
    assert _run(tasks, env_cache, tmp_path, first, "a").resolved == 3
    assert first.order == [t.instance_id for t in tasks]  # nothing known yet: the suite's order
    known = json.loads((env_cache / durations.FILE).read_text())
    assert {f"grade:{t.instance_id}" for t in tasks} <= set(known)
    assert all(known[f"grade:{t.instance_id}"] > 0 for t in tasks)
    known.update({"grade:calc__calc-0": 0.1, "grade:calc__calc-1": 0.2, "grade:calc__calc-2": 9.0})
    (env_cache / durations.FILE).write_text(json.dumps(known))
    second = Recording()
    assert _run(tasks, env_cache, tmp_path, second, "b").resolved == 3
    assert second.order == ["calc__calc-2", "calc__calc-1", "calc__calc-0"]


def test_unknown_instances_go_first_and_a_bad_file_means_the_suites_order(tmp_path):
    known = {"grade:b": 1.0, "grade:c": 5.0, "agent:a": 99.0}
    assert durations.longest_first(["a", "b", "c", "d"], "grade", known) == ["a", "d", "c", "b"]
    for bad in ("not json", "[1, 2]", '{"grade:a": "slow", "grade:b": -1, "grade:c": NaN, "grade:d": true}'):
        (tmp_path / durations.FILE).write_text(bad)
        assert durations.load(tmp_path) == {}
    durations.save(tmp_path, "grade", {"x": 1.23456})
    assert durations.load(tmp_path) == {"grade:x": 1.235}
    durations.save(tmp_path / "missing" / "deeper", "grade", {"x": 1.0})  # created, never an error
    assert durations.load(tmp_path / "missing" / "deeper") == {"grade:x": 1.0}
