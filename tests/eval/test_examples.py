"""The shipped SWE-bench Lite examples load and are gradable; the sympy parser reads real bin/test logs.

The logs under tests/fixtures/sympy_logs/ were captured by `devloop eval` on real Lite instances
(see examples/swebench/README.md); nothing here needs the network or a mirror.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.parse.log_parsers import parse_log
from devloop.tasks import load_tasks

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "swebench" / "lite-validated.jsonl"
LOGS = ROOT / "tests" / "fixtures" / "sympy_logs"


def _log(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_examples_load_with_environments() -> None:
    result = load_tasks(EXAMPLES)
    assert result.skipped == []
    ids = [t.instance_id for t in result.tasks]
    assert len(ids) == len(set(ids)) >= 8
    assert {t.repo for t in result.tasks} == {"pytest-dev/pytest", "sympy/sympy", "pallets/flask"}
    for task in result.tasks:
        env = task.environment
        assert env is not None, task.instance_id
        assert env.log_parser in ("pytest", "sympy"), task.instance_id
        assert env.test_cmd.strip() and env.python.startswith("3."), task.instance_id
        assert isinstance(task.FAIL_TO_PASS, list) and task.FAIL_TO_PASS, task.instance_id
        assert isinstance(task.PASS_TO_PASS, list) and task.PASS_TO_PASS, task.instance_id
        assert task.patch.strip() and task.test_patch.strip(), task.instance_id
        assert len(task.base_commit) == 40, task.instance_id


def test_examples_use_the_official_parser_per_repo() -> None:
    by_repo = {t.repo: t.environment for t in load_tasks(EXAMPLES).tasks}
    sympy, flask = by_repo["sympy/sympy"], by_repo["pallets/flask"]
    assert sympy is not None and flask is not None
    assert sympy.log_parser == "sympy" and "bin/test -C --verbose" in sympy.test_cmd
    assert flask.log_parser == "pytest" and flask.test_cmd == "pytest -rA"


def test_sympy_failing_run_marks_the_fail_to_pass_test() -> None:
    # sympy__sympy-20590 graded with an unrelated patch: test_immutable still fails.
    statuses = parse_log(_log("sympy__sympy-20590-wrong.log"), "sympy")
    assert statuses["test_immutable"] == "FAILED"
    assert statuses["sympy/core/tests/test_basic.py:test_immutable"] == "FAILED"  # the failure header
    assert statuses["test__aresame"] == "PASSED"
    assert statuses["test_canonical_variables"] == "PASSED"
    # The last test's line ends in "[FAIL]", not " ok": the official parser misses it too, and the
    # official PASS_TO_PASS list leaves it out accordingly.
    assert "test_replace_exceptions" not in statuses
    assert sum(s == "PASSED" for s in statuses.values()) == 21


def test_sympy_gold_run_passes_every_listed_test() -> None:
    statuses = parse_log(_log("sympy__sympy-13480-gold.log"), "sympy")
    task = next(t for t in load_tasks(EXAMPLES).tasks if t.instance_id == "sympy__sympy-13480")
    for test in task.FAIL_TO_PASS + task.PASS_TO_PASS:
        assert statuses.get(test) == "PASSED", test
    assert "test_cosh_expansion" not in statuses  # printed as "ok   [OK]": unlisted, as officially
    assert set(statuses.values()) == {"PASSED"}


def test_sympy_import_error_names_no_test() -> None:
    # A module that fails to import prints a bare "E" and empty headers: every listed test is absent,
    # so the grader counts them failed.
    statuses = parse_log(_log("sympy__sympy-24213-import-error.log"), "sympy")
    assert not any(s == "PASSED" for s in statuses.values())
    assert "test_issue_24211" not in statuses


@pytest.mark.parametrize("name", sorted(p.name for p in LOGS.glob("*.log")))
def test_sympy_fixture_logs_are_real_bin_test_output(name: str) -> None:
    first = _log(name).splitlines()[0]
    assert first.startswith("$ ") and "bin/test -C --verbose sympy/" in first
