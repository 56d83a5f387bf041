"""Grading with the official log parsers, and records whose environment the official table could not give."""

from __future__ import annotations

from devloop.eval.grading import grade
from devloop.eval.verdict import LOG_PARSERS, Category, parse_test_log
from devloop.tasks.model import EnvironmentSpec


def _grade(task, patch, env_manager, tmp_path):
    return grade(task, patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work",
                 log_dir=tmp_path / "logs")  # fmt: skip


def test_every_official_parser_name_is_accepted_by_the_schema() -> None:
    for name in LOG_PARSERS:
        assert EnvironmentSpec(python="3.11", log_parser=name).log_parser == name  # type: ignore[arg-type]
    assert set(LOG_PARSERS) >= {
        "django",
        "pytest_options",
        "matplotlib",
        "seaborn",
        "pytest_v2",
        "sympy",
        "junit",
    }


def test_pytest_reads_logs_the_official_way() -> None:
    log = "PASSED tests/t.py::test_a[one two]\nPASSED [100%]\nFAILED tests/t.py::test_b - boom\nPASSED tests/t.py::test_b\n"
    # Keyed by the second token (cut at a space), pseudo-ids kept, last status wins.
    assert parse_test_log(log, "pytest") == {
        "tests/t.py::test_a[one": "PASSED",
        "[100%]": "PASSED",
        "tests/t.py::test_b": "PASSED",
    }
    assert parse_test_log("test_x (m.T) ... ok\n", "django") == {"test_x (m.T)": "PASSED"}


def test_a_log_the_official_parser_cannot_read_is_a_clear_error_verdict(
    make_task, spec, env_manager, tmp_path
):
    environment = {**spec.model_dump(), "log_parser": "seaborn", "test_cmd": "echo FAILED; true"}
    task = make_task(environment=environment)
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ERROR
    assert verdict.message.startswith("the seaborn log parser cannot read the test log (test_output.txt)")
    assert "a FAILED line with no test id" in verdict.message


def test_a_record_the_table_cannot_serve_grades_env_error_naming_the_missing_piece(
    make_task, env_manager, tmp_path
):
    task = make_task(environment=None)
    task.environment_missing = ["system packages (apt-get install): texlive"]
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ENV_ERROR
    assert "official SWE-bench table" in verdict.message
    assert "system packages (apt-get install): texlive" in verdict.message
