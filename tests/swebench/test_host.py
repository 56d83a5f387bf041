"""Host facts the official containers fix: named per task, and in the verdict, where this host lacks them."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    notes = unreproduced(facts, locales=HERE, cpus=1, euid=0, bwrap_problem="no user namespaces")
    assert notes[0].startswith("the en_US.UTF-8 locale (not installed here and localedef cannot build it")
    assert notes[1].startswith("2 CPUs (this host has 1; a test that needs more")
    assert (
        notes[2]
        == "tests as a non-root user (devloop runs as root and bwrap cannot grade: no user namespaces)"
    )
    assert unreproduced(HostFacts(), locales=HERE, cpus=1, euid=0) == []
    # A locale the install compiles is reproduced; so is a non-root user where bwrap grades (it demotes root).
    assert unreproduced(facts, locales=HERE, cpus=2, euid=0, generated_locale=True, bwrap_problem=None) == []


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


def test_a_locale_the_host_lacks_is_compiled_into_the_venv_and_found_through_locpath(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from devloop.swebench import map_spec
    from devloop.swebench.host import LOCALE_DIR, locale_sources, reproduce_locale

    env, _ = map_spec("django/django", "3.0")
    assert env is not None and env.host.locale == "en_US.UTF-8" and env.env["LC_ALL"] == "en_US.UTF-8"
    fields = env.environment_fields()
    if locale_sources("en_US.UTF-8") is None:
        assert not reproduce_locale(fields, env.host, locales=HERE)
        pytest.skip("this host has no localedef or no en_US/UTF-8 definitions to compile")
    assert not reproduce_locale(dict(fields), env.host, locales=HERE | {"en_us.utf8"})  # installed: as is
    assert reproduce_locale(fields, env.host, locales=HERE)
    lines = fields["install"].splitlines()
    assert (
        lines[0] == "set -euxo pipefail"
        and "localedef" in lines[1]
        and lines[-1] == env.install.splitlines()[-1]
    )
    assert fields["test_cmd"] == f'LOCPATH="{LOCALE_DIR}" {env.test_cmd}'
    # The step and the test command as the sandbox runs them: bash, in the tree, with VIRTUAL_ENV set.
    venv = tmp_path / "venv"
    venv.mkdir()
    probe = "import locale, sys; locale.setlocale(locale.LC_ALL, ''); print(locale.getlocale(), sys.getfilesystemencoding())"
    base = {"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": str(venv), **env.env}
    subprocess.run(["bash", "-c", lines[1]], env=base, check=True, capture_output=True)
    command = f'LOCPATH="{LOCALE_DIR}" {sys.executable} -c "{probe}"'
    ran = subprocess.run(["bash", "-c", command], env=base, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["('en_US',", "'UTF-8')", "utf-8"]
    if (
        shutil.which("locale")
        and "en_US.utf8" not in subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout
    ):
        unset = subprocess.run([sys.executable, "-c", probe], env=base, capture_output=True, text=True)
        assert (
            unset.returncode != 0 and "unsupported locale setting" in unset.stderr
        )  # LOCPATH is what made it
