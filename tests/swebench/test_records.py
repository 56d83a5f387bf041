"""Records without an environment get the official table's, or name what it needs that devloop lacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devloop.swebench.records import fill_environments
from devloop.tasks.model import EnvironmentSpec, Task

FIXTURE = Path(__file__).parents[1] / "fixtures" / "swebench_lite_envs.json"


def _lite() -> dict[str, dict]:
    return {r["instance_id"]: r for r in json.loads(FIXTURE.read_text())["records"]}


def _task(record: dict, **fields) -> Task:
    return Task.model_validate(
        {"base_commit": "0" * 40, "problem_statement": "", "FAIL_TO_PASS": [], **record, **fields}
    )


def test_a_pip_installable_record_gets_the_official_environment() -> None:
    task = _task(_lite()["sympy__sympy-14774"])
    fill = fill_environments([task])
    assert (fill.filled, fill.unfilled) == (1, 0)
    assert task.environment is not None and task.environment_missing == []
    assert task.environment.python == "3.9"
    assert task.environment.log_parser == "sympy"
    assert task.environment.test_cmd.endswith("bin/test -C --verbose")
    assert "mpmath==1.3.0" in task.environment.pip


def test_sphinx_gets_the_official_pytest_v2_parser() -> None:
    task = _task(_lite()["sphinx-doc__sphinx-8721"])
    fill_environments([task])
    assert task.environment is not None and task.environment.log_parser == "pytest_v2"


def test_missing_pieces_are_named_on_the_task_and_grouped_in_the_summary() -> None:
    lite = _lite()
    tasks = [
        _task(lite[i])
        for i in ("django__django-15202", "django__django-17087", "matplotlib__matplotlib-23476")
    ]
    fill = fill_environments(tasks)
    assert (fill.filled, fill.unfilled) == (0, 3)
    assert all(t.environment is None and t.environment_missing for t in tasks)
    # django installs tests/requirements/py3.txt from the repository, which devloop does not read yet.
    assert any("tests/requirements/py3.txt" in m for m in tasks[0].environment_missing)
    assert any("apt-get install" in m for m in tasks[2].environment_missing)
    lines = fill.lines()
    assert lines[0].startswith("0 task(s) got an environment from the official SWE-bench table; 3 cannot")
    assert any(line.startswith("  2 x the requirements file (tests/requirements/py3.txt)") for line in lines)


def test_a_record_with_an_environment_or_an_unknown_version_is_handled() -> None:
    own = _task(_lite()["django__django-15202"], environment={"python": "3.11"})
    unknown = _task({"instance_id": "x__y-1", "repo": "x/y", "version": "1.0"})
    fill = fill_environments([own, unknown])
    assert own.environment == EnvironmentSpec(python="3.11")  # a record's own environment is kept
    assert unknown.environment is None
    assert unknown.environment_missing == ["swebench 4.1.0 has no spec for x/y version 1.0"]
    assert (fill.filled, fill.unfilled) == (0, 1)


def test_the_whole_lite_fixture_is_accounted_for() -> None:
    tasks = [_task(r) for r in _lite().values()]
    fill = fill_environments(tasks)
    assert fill.filled + fill.unfilled == len(tasks) == 300
    assert fill.filled == sum(t.environment is not None for t in tasks) > 100


def test_overrides_patch_by_instance_id_then_repo_at_version(tmp_path: Path) -> None:
    from devloop.swebench.records import load_overrides

    lite = _lite()
    path = tmp_path / "overrides.toml"
    path.write_text(
        '["django/django@4.1"]\npython = "3.9"\npip = ["asgiref==3.5.0"]\n\n'
        '["sympy__sympy-14774"]\nenv = { LANG = "C.UTF-8" }\n'
    )
    overrides = load_overrides(path)
    django, other, sympy = (
        _task(lite[i]) for i in ("django__django-15202", "django__django-17087", "sympy__sympy-14774")
    )
    fill = fill_environments([django, other, sympy], overrides, origin=str(path))
    # The entry stands in for the missing requirements file: the table's environment, patched, is used.
    assert django.environment is not None and django.environment_missing == []
    assert django.environment.pip == ["asgiref==3.5.0"] and django.environment.log_parser == "django"
    assert other.environment is None and other.environment_missing  # 5.0: no entry
    assert sympy.environment is not None and sympy.environment.env == {"LANG": "C.UTF-8"}
    assert sympy.environment.log_parser == "sympy"  # the rest of the official environment is kept
    assert (fill.overridden, fill.unfilled) == (2, 1)
    assert "2 patched by --environment-overrides" in fill.lines()[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"x__y-1": {"pyhton": "3.9"}}', "x__y-1: pyhton: not an environment field"),
        ('{"x__y-1": 3}', "x__y-1: expected a table of environment fields"),
        ("[1]", "expected a table keyed by instance id or repo@version"),
        ("{", "cannot read"),
    ],
)
def test_bad_overrides_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    from devloop.swebench.records import OverridesError, load_overrides

    path = tmp_path / "o.json"
    path.write_text(text)
    with pytest.raises(OverridesError, match=re.escape(message)):
        load_overrides(path)


def test_an_override_that_makes_an_invalid_environment_names_the_entry(tmp_path: Path) -> None:
    from devloop.swebench.records import OverridesError

    task = _task(
        {"instance_id": "x__y-1", "repo": "x/y", "version": "1.0"}
    )  # no spec: entry must be complete
    with pytest.raises(OverridesError, match=r"^o.json: x__y-1: python: Field required \(for x__y-1\)$"):
        fill_environments([task], {"x__y-1": {"pip": ["a"]}}, origin="o.json")
