"""Host facts the official containers fix: named per task, and in the verdict, where this host lacks them."""

from __future__ import annotations

from pathlib import Path

from devloop.eval.envs import EnvironmentManager
from devloop.eval.grading import grade
from devloop.swebench.environments import HostFacts
from devloop.swebench.host import NOTES_FIELD, unreproduced
from devloop.swebench.records import fill_environments
from devloop.tasks.model import Task

HERE = frozenset({"c", "c.utf8", "posix"})


def test_each_fact_this_host_lacks_is_named() -> None:
    facts = HostFacts(locale="en_US.UTF-8", cpus=2.0, non_root=True)
    assert unreproduced(facts, locales=HERE | {"en_us.utf8"}, cpus=4, euid=1000) == []
    notes = unreproduced(facts, locales=HERE, cpus=1, euid=0)
    assert notes[0].startswith("the en_US.UTF-8 locale (not installed here")
    assert notes[1] == "2 CPUs (this host has 1)"
    assert notes[2].startswith("tests as a non-root user")
    assert unreproduced(HostFacts(), locales=HERE, cpus=1, euid=0) == []


def _task(**fields) -> Task:
    return Task.model_validate(
        {
            "instance_id": "pylint-dev__pylint-7080",
            "repo": "pylint-dev/pylint",
            "version": "2.15",
            "base_commit": "a" * 40,
            "problem_statement": "",
            "FAIL_TO_PASS": [],
            **fields,
        }  # fmt: skip
    )


def test_the_fill_names_them_on_the_task_and_grading_copies_them_into_the_verdict(tmp_path: Path) -> None:
    from devloop.swebench import environment_for

    task = _task()
    fill_environments([task])
    environment, _ = environment_for(task)
    assert environment is not None and environment.host.cpus == 2.0
    assert (task.model_extra or {})[NOTES_FIELD] == unreproduced(environment.host)
    noted = _task(**{NOTES_FIELD: ["2 CPUs (this host has 1)"]})
    verdict = grade(noted, "", env_manager=EnvironmentManager(tmp_path), mirrors=None, workdir=tmp_path / "w")
    assert verdict.extra["host_not_reproduced"] == ["2 CPUs (this host has 1)"]
