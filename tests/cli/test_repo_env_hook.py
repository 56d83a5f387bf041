"""The test hook tells "the tests fail" from "the test runner is missing or crashed", from the CLI: a
missing pytest or a test file that cannot be collected is `hook_error` with its one-line cause, on the
terminal and in result.json, never `test_status: failing`; a real failure stays `failing`."""

from __future__ import annotations

from typing import Any

import pytest

from devloop.runtime.bwrap import probe_bwrap

pytestmark = pytest.mark.slow
Kit = Any  # the `kit` fixture (tests/cli/conftest.py)
NO_BWRAP = probe_bwrap()
AUTO = pytest.param("auto", marks=pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap: {NO_BWRAP}"))
USES_DEP = "import tinydep\n\n\ndef test_more():\n    assert tinydep.VALUE == 42\n"
FAILS = "def test_wrong():\n    assert 1 + 1 == 3\n"


def create(path: str, text: str) -> tuple[str, dict[str, str]]:
    return ("str_replace_editor", {"command": "create", "path": path, "file_text": text})


@pytest.mark.parametrize("sandbox", [AUTO])
def test_a_missing_pytest_is_a_hook_error(kit: Kit, sandbox: str) -> None:
    repo = kit.repo({"a.py": "x = 1\n"})
    venv = kit.venv(repo / ".venv", pytest_too=False)
    run = kit.run(repo, [create("tests/test_more.py", USES_DEP)], "--sandbox", sandbox, "--hook", "pytest")
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    cause = f"pytest is not installed for {venv / 'bin' / 'python'}"
    assert run.result["test_status"] == "hook_error" and run.result["hook_error"] == cause, run.result
    assert f"tests: hook_error: {cause}" in run.proc.stdout
    assert run.result["rollbacks"] == 0 and run.result["checkpoints"] == 0


def test_a_test_file_that_cannot_be_collected_is_a_hook_error(kit: Kit) -> None:
    repo = kit.repo({"a.py": "x = 1\n"})
    kit.venv(repo / ".venv", tinydep=False)  # pytest, but not the dependency the new test imports
    run = kit.run(repo, [create("tests/test_more.py", USES_DEP)], "--sandbox", "none", "--hook", "pytest")
    cause = "tests not collected: tests/test_more.py: ModuleNotFoundError: No module named 'tinydep'"
    assert run.result["test_status"] == "hook_error" and run.result["hook_error"] == cause, run.result
    assert f"tests: hook_error: {cause}" in run.proc.stdout


@pytest.mark.parametrize("sandbox", [AUTO])
def test_tests_that_really_fail_are_failing(kit: Kit, sandbox: str) -> None:
    repo = kit.repo({"a.py": "x = 1\n"})
    kit.venv(repo / ".venv")
    run = kit.run(repo, [create("tests/test_wrong.py", FAILS)], "--sandbox", sandbox, "--hook", "pytest")
    assert run.result["test_status"] == "failing" and run.result["hook_error"] is None, run.result
    assert run.result["tests_failed"] == 1
    assert "tests: failing (0 passed, 1 failed)" in run.proc.stdout


FAKE_JEST = """#!/bin/sh
# Stands in for jest (same flags, same JSON report): what is tested is that the hook finds it.
for arg in "$@"; do
  case "$arg" in --outputFile=*) out="${arg#--outputFile=}" ;; esac
done
printf '{"testResults": [{"name": "%s/math.test.js", "assertionResults": [{"title": "adds", "status": "passed", "ancestorTitles": []}]}]}' "$PWD" > "$out"
"""


@pytest.mark.parametrize("sandbox", [AUTO, "none"])
def test_jest_hook_finds_the_repos_node_modules(kit: Kit, sandbox: str) -> None:
    """node_modules is gitignored (not in the workspace): the hook runs the repository's jest."""
    repo = kit.repo(
        {
            "package.json": '{"name": "p", "version": "1.0.0"}\n',
            "math.js": "exports.add = (a, b) => a - b;\n",
            "math.test.js": "test('adds', () => expect(require('./math').add(1, 2)).toBe(3));\n",
        }
    )
    jest = repo / "node_modules" / ".bin" / "jest"
    jest.parent.mkdir(parents=True)
    jest.write_text(FAKE_JEST)
    jest.chmod(0o755)
    fix = (
        "str_replace_editor",
        {"command": "str_replace", "path": "math.js", "old_str": "a - b", "new_str": "a + b"},
    )
    run = kit.run(repo, [fix], "--sandbox", sandbox, "--hook", "jest")
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert f"node_modules: {repo / 'node_modules'} (on PATH and NODE_PATH)" in run.first_line
    assert run.result["test_status"] == "green" and run.result["tests_passed"] == 1, run.result
