"""Test runners through the real persistent shell: pytest details, timeouts, commands, jest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devloop.feedback import runners
from devloop.runtime import LocalRuntime


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(tmp_path, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    yield rt
    rt.close()


def test_pytest_runner_reports_message_frames_locals_and_output(tmp_path: Path, shell: LocalRuntime) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/calc.py": "def div(a, b):\n    scale = 10\n    return a * scale // b\n",
            "tests/test_calc.py": (
                "import pytest\nfrom pkg.calc import div\n\n"
                "def test_ok():\n    assert div(4, 2) == 20\n\n"
                "def test_zero():\n    print('dividing now')\n    assert div(1, 0) == 0\n\n"
                "def test_wrong():\n    expected = 3\n    assert div(1, 1) == expected\n\n"
                "@pytest.mark.skip\ndef test_skipped():\n    pass\n\n"
                "@pytest.mark.xfail\ndef test_xfail():\n    assert False\n"
            ),
        },
    )
    shell.run("cd /", 5)  # the agent's shell may stand anywhere; tests run from the root
    report = runners.PytestRunner(shell, tmp_path).run(["tests/test_calc.py"], 60)
    assert report.statuses == {
        "tests/test_calc.py::test_ok": "PASSED",
        "tests/test_calc.py::test_zero": "FAILED",
        "tests/test_calc.py::test_wrong": "FAILED",
        "tests/test_calc.py::test_skipped": "SKIPPED",
        "tests/test_calc.py::test_xfail": "XFAIL",
    }
    zero = next(f for f in report.failures if f.test_id.endswith("test_zero"))
    assert zero.message == "ZeroDivisionError: integer division or modulo by zero"
    assert zero.frames[-1].startswith("pkg/calc.py:3 in div")
    assert zero.locals == {"a": "1", "b": "0", "scale": "10"}  # the failing frame: where it was raised
    assert zero.stdout == "dividing now\n"
    wrong = next(f for f in report.failures if f.test_id.endswith("test_wrong"))
    assert "assert 10 == 3" in wrong.message and wrong.locals == {"expected": "3"}
    assert shell.run("pwd", 5).output.strip() == "/"  # the agent's cwd is kept
    assert report.duration_s > 0 and not report.timed_out


def test_collection_error_is_an_error_with_the_exception(tmp_path: Path, shell: LocalRuntime) -> None:
    write(tmp_path, {"mod.py": "def f(:\n", "test_mod.py": "import mod\n\ndef test_f():\n    pass\n"})
    report = runners.PytestRunner(shell, tmp_path).run(None, 60)
    assert report.statuses == {"test_mod.py": "ERROR"}
    assert "SyntaxError" in report.failures[0].message
    assert "SyntaxError" in report.log  # the raw output, for rescue rules


def test_pytest_missing_or_broken_is_reported_not_raised(tmp_path: Path, shell: LocalRuntime) -> None:
    report = runners.PytestRunner(shell, tmp_path, args=("--no-such-option",)).run(None, 60)
    assert report.statuses == {"<pytest>": "ERROR"}
    assert "--no-such-option" in report.failures[0].message


def _alive_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if (
            marker in cmdline
            and "state" not in Path(f"/proc/{pid}/status").read_text().split("\n")[2].lower()
        ):
            found.append(int(pid))
    return found


def _zombie(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


@pytest.mark.slow
def test_timeout_kills_the_test_process_and_everything_it_started(
    tmp_path: Path, shell: LocalRuntime
) -> None:
    marker = "987654"
    write(
        tmp_path,
        {
            "test_hang.py": (
                "import subprocess, time\n\n"
                "def test_fast():\n    pass\n\n"
                f"def test_hang():\n    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                f"    subprocess.Popen(['sleep', '{marker}'])\n    time.sleep(600)\n"
            )
        },
    )
    t0 = time.monotonic()
    report = runners.PytestRunner(shell, tmp_path).run(None, 3)
    assert time.monotonic() - t0 < 20
    assert report.timed_out
    assert report.statuses == {"test_hang.py::test_fast": "PASSED"}  # what finished before the kill
    deadline = time.monotonic() + 5
    while [p for p in _alive_with(f"sleep {marker}") if not _zombie(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in _alive_with(f"sleep {marker}") if not _zombie(p)] == []
    assert shell.run("echo alive", 5).output.strip() == "alive"  # the agent's shell survives


def test_command_runner_passes_on_exit_zero_and_shows_the_tail(tmp_path: Path, shell: LocalRuntime) -> None:
    ok = runners.CommandRunner(shell, tmp_path, "true").run(None, 10)
    assert ok.statuses == {"true": "PASSED"} and ok.green
    bad = runners.CommandRunner(shell, tmp_path, "seq 100; echo boom >&2; exit 3").run(None, 10)
    assert not bad.green
    assert "exited 3" in bad.failures[0].message and "boom" in bad.failures[0].message
    assert "\n1\n" not in bad.failures[0].message  # only the tail
    slow = runners.CommandRunner(shell, tmp_path, "sleep 30").run(None, 1)
    assert slow.timed_out and "timeout" in slow.failures[0].message


def test_make_runner_picks_by_hook_value(tmp_path: Path, shell: LocalRuntime) -> None:
    assert isinstance(runners.make_runner("pytest", shell, tmp_path), runners.PytestRunner)
    assert isinstance(runners.make_runner("jest", shell, tmp_path), runners.JestRunner)
    assert isinstance(runners.make_runner("make check", shell, tmp_path), runners.CommandRunner)


JEST_TEST = """const { add, sub } = require('./math');
test('adds', () => { expect(add(1, 2)).toBe(3); });
describe('sub', () => { test('subtracts', () => { expect(sub(5, 2)).toBe(3); }); });
"""


@pytest.mark.slow
def test_jest_runner_on_a_small_npm_project(tmp_path: Path) -> None:
    if not (shutil.which("npm") and shutil.which("npx")):
        pytest.skip("npm/npx not installed")
    project = tmp_path / "jsproj"
    write(
        project,
        {
            "package.json": json.dumps({"name": "jsproj", "version": "1.0.0", "private": True}),
            "math.js": "exports.add = (a, b) => a + b;\nexports.sub = (a, b) => a + b;\n",
            "math.test.js": JEST_TEST,
            "other.js": "exports.x = 1;\n",
            "other.test.js": "test('x', () => { expect(require('./other').x).toBe(1); });\n",
        },
    )
    try:
        install = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefer-offline", "jest@29"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install jest timed out")
    if install.returncode != 0:
        pytest.skip(f"npm install jest failed: {install.stderr.strip().splitlines()[-1:]}")
    with LocalRuntime(project) as rt:
        runner = runners.JestRunner(rt, project)
        report = runner.run(["math.js"], 120)
        assert report.statuses == {
            "math.test.js > adds": "PASSED",
            "math.test.js > sub > subtracts": "FAILED",
        }
        failure = report.failures[0]
        assert "Expected: 3" in failure.message and "Received: 7" in failure.message
        assert any("math.test.js" in frame for frame in failure.frames)
        everything = runner.run(None, 120)
        assert "other.test.js > x" in everything.statuses and len(everything.statuses) == 3
