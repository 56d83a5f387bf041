"""A runner that could not judge the tests says so (TestReport.error, the hook's `hook_error`), in one
line naming the cause; tests that run and fail leave it empty. And the pytest runner runs the run's chosen
interpreter (DEVLOOP_PYTHON in the runtime's environment), whatever PATH says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.eval.envs import find_uv
from devloop.feedback import runners
from devloop.feedback.hook import run_status
from devloop.runtime.local import LocalRuntime

UV = find_uv()
pytestmark = pytest.mark.skipif(UV is None, reason="uv is not installed")


def venv(path: Path, *packages: str) -> Path:
    subprocess.run([UV, "venv", "-q", str(path), "--python", sys.executable], check=True)
    if packages:
        done = subprocess.run(
            [UV, "pip", "install", "-q", "--offline", "--python", str(path / "bin" / "python"), *packages],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"{packages} not in uv's cache")
    return path / "bin" / "python"


def pytest_report(root: Path, python: Path, tests: list[str] | None = None) -> runners.TestReport:
    with LocalRuntime(root, env={**os.environ, "DEVLOOP_PYTHON": str(python)}) as rt:
        runner = runners.PytestRunner(rt, root)
        assert runner.python == str(python)
        assert runner.command(None, root / "r.jsonl").split()[2] == str(python)
        return runner.run(tests, 60)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "tests").mkdir(parents=True)
    return tmp_path / "proj"


def test_a_missing_pytest_is_a_hook_error(root: Path, tmp_path: Path) -> None:
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert True\n")
    python = venv(tmp_path / "bare")
    report = pytest_report(root, python)
    assert report.error == f"pytest is not installed for {python}"
    assert run_status(report) == "hook_error"


def test_an_import_error_at_collection_is_a_hook_error(root: Path, tmp_path: Path) -> None:
    (root / "tests" / "test_a.py").write_text("import not_installed_dep\n\n\ndef test_a():\n    pass\n")
    report = pytest_report(root, venv(tmp_path / "v", "pytest"))
    assert report.error == (
        "tests not collected: tests/test_a.py: ModuleNotFoundError: No module named 'not_installed_dep'"
    )
    assert run_status(report) == "hook_error"


def test_a_usage_error_is_a_hook_error_and_a_failure_is_not(root: Path, tmp_path: Path) -> None:
    (root / "tests" / "test_a.py").write_text("def test_a():\n    assert 1 == 2\n")
    python = venv(tmp_path / "v", "pytest")
    missing = pytest_report(root, python, ["tests/test_gone.py"])
    assert missing.error == (
        "pytest did not run the tests (exit 4): ERROR: file or directory not found: tests/test_gone.py"
    )
    failing = pytest_report(root, python)
    assert failing.error == "" and run_status(failing) == "failing" and failing.failed == 1


def test_a_command_that_cannot_run_is_a_hook_error(tmp_path: Path) -> None:
    with LocalRuntime(tmp_path) as rt:
        missing = runners.CommandRunner(rt, tmp_path, "no-such-test-tool --all").run(None, 30)
        failing = runners.CommandRunner(rt, tmp_path, "exit 1").run(None, 30)
    assert missing.error.startswith("`no-such-test-tool --all` could not run (exit 127): ")
    assert "no-such-test-tool: command not found" in missing.error
    assert failing.error == "" and run_status(failing) == "failing"
