"""Minimal patch: delta debugging drops planted irrelevant changes, keeps the fix and what the tests observe."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from devloop.feedback.base import TestReport as Report
from devloop.feedback.minimize import SplitPatch, ddmin, minimize
from devloop.parse.log_parsers import parse_pytest
from devloop.workspace import Workspace

OPS = """\
def add(a, b):
    return a - b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b


def div(a, b):
    return a / b


def neg(a):
    return -a
"""

OTHER = """\
def greet(name):
    return "hello " + name
"""

TESTS = """\
from calc.ops import add, sub


def test_add():
    assert add(2, 3) == 5


def test_sub():
    assert sub(5, 3) == 2
"""


# A tiny test runner kept in the repository: plain functions, pytest's `-rA` line format, fast to start.
RUN_TESTS = """\
import importlib.util, pathlib, sys, traceback
sys.path.insert(0, ".")
for target in sys.argv[1:]:
    for path in sorted(pathlib.Path(target).glob("test_*.py")) if pathlib.Path(target).is_dir() else [pathlib.Path(target)]:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:
            print("ERROR", path.as_posix())
            continue
        for name in [n for n in vars(module) if n.startswith("test_")]:
            try:
                getattr(module, name)()
                print("PASSED", f"{path.as_posix()}::{name}")
            except Exception:
                print("FAILED", f"{path.as_posix()}::{name}")
"""


class PyRunner:
    """Runs the repository's run_tests.py in `root`; counts runs (shared by relocated copies) and records
    what the watched workspace looked like at each run."""

    def __init__(self, root: Path, watch: Path | None = None) -> None:
        self.root = root
        self.watch = watch
        self.calls: list[Path] = []
        self.seen: list[str] = []

    @property
    def runs(self) -> int:
        return len(self.calls)

    def run(self, tests: list[str] | None, timeout: float) -> Report:
        self.calls.append(self.root)
        if self.watch is not None:
            self.seen.append((self.watch / "calc/ops.py").read_text())
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "run_tests.py", *(tests or ["tests"])],
                              cwd=self.root, capture_output=True, text=True, timeout=timeout)  # fmt: skip
        log = proc.stdout + proc.stderr
        return Report(parse_pytest(log), duration_s=time.monotonic() - t0, log=log)


class Counter:
    """Wraps a runner; shares its count across relocated copies (it has no `root`: no relocation)."""

    def __init__(self, inner: PyRunner) -> None:
        self.inner = inner

    def run(self, tests: list[str] | None, timeout: float) -> Report:
        return self.inner.run(tests, timeout)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    repo = tmp_path / "calc-repo"
    (repo / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "calc/__init__.py").write_text("")
    (repo / "calc/ops.py").write_text(OPS)
    (repo / "calc/other.py").write_text(OTHER)
    (repo / "tests/test_ops.py").write_text(TESTS)
    (repo / "run_tests.py").write_text(RUN_TESTS)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    workspace = Workspace.create(repo, parent=tmp_path)
    # The agent's edit: the fix, a comment beside it (same hunk), a far-away comment, an unrelated function.
    ops = OPS.replace("    return a - b\n", "    # planted: adding\n    return a + b\n", 1)
    ops = ops.replace("def neg(a):\n", "def neg(a):  # planted far away\n")
    (workspace.root / "calc/ops.py").write_text(ops)
    (workspace.root / "calc/other.py").write_text(OTHER + '\n\ndef shout(name):\n    return "HEY " + name\n')
    return workspace


def test_planted_hunks_and_lines_are_dropped_and_the_fix_kept(ws: Workspace) -> None:
    patch = ws.diff()
    assert SplitPatch.size(patch) == 9 and len(SplitPatch(patch).hunk_units()) == 3
    runner = PyRunner(ws.root, watch=ws.root)
    original_ops = (ws.root / "calc/ops.py").read_text()
    result = minimize(ws.root, patch, runner, ["tests"], current_diff=ws.diff)
    assert result.mode == "scratch" and result.verified, result.note
    assert "+    return a + b" in result.patch and "-    return a - b" in result.patch
    assert "planted" not in result.patch and "shout" not in result.patch
    assert (result.size_before, result.size_after) == (9, 2)
    assert (result.hunks_before, result.hunks_after) == (3, 1)
    assert result.test_runs == runner.runs
    # the workspace held the original patch for every run but the final confirmation, then the result
    assert all(seen == original_ops for seen in runner.seen[:-1])
    assert ws.diff() == result.patch
    assert runner.run(["tests"], 60).statuses == {"tests/test_ops.py::test_add": "PASSED",
                                                  "tests/test_ops.py::test_sub": "PASSED"}  # fmt: skip


def test_the_same_set_of_passing_tests_not_merely_green(ws: Workspace) -> None:
    # A new passing test is part of what the tests observe: dropping it would still be green, but not the same.
    (ws.root / "tests/test_more.py").write_text(
        "from calc.ops import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
    )
    result = minimize(ws.root, ws.diff(), PyRunner(ws.root), ["tests"])
    assert result.verified and "test_mul" in result.patch and "planted" not in result.patch


def test_runner_that_cannot_move_works_in_place_and_leaves_the_result(ws: Workspace) -> None:
    inner = PyRunner(ws.root)
    result = minimize(ws.root, ws.diff(), Counter(inner), ["tests"], current_diff=ws.diff)
    assert result.mode == "in_place" and result.verified
    assert result.size_after == 2 and ws.diff() == result.patch and result.test_runs == inner.runs


def test_failing_tests_leave_the_patch_alone(ws: Workspace) -> None:
    (ws.root / "calc/ops.py").write_text(OPS.replace("return a * b", "return a ** b"))
    (ws.root / "tests/test_mul.py").write_text(
        "from calc.ops import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
    )
    patch = ws.diff()
    result = minimize(ws.root, patch, PyRunner(ws.root), ["tests"])
    assert result.patch == patch and result.test_runs == 1 and "do not pass" in result.note
    assert ws.diff() == patch


def test_an_error_midway_leaves_the_workspace_as_it_was(ws: Workspace, tmp_path: Path) -> None:
    class Breaks(PyRunner):
        def run(self, tests: list[str] | None, timeout: float) -> Report:
            if self.runs == 2:
                raise RuntimeError("runner died")
            return super().run(tests, timeout)

    patch = ws.diff()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(RuntimeError, match="runner died"):
        minimize(ws.root, patch, Counter(Breaks(ws.root)), ["tests"], scratch_parent=scratch)  # in place
    assert ws.diff() == patch
    assert list(scratch.iterdir()) == []  # its scratch copy was removed


def test_ddmin_finds_the_needed_units() -> None:
    units = [frozenset([i]) for i in range(8)]
    calls: list[frozenset[int]] = []

    def good(sub: list[frozenset[int]]) -> bool:
        kept = frozenset().union(*sub) if sub else frozenset()
        calls.append(kept)
        return {2, 5} <= kept

    assert ddmin(units, good) == [frozenset([2]), frozenset([5])]
    assert len(set(calls)) <= 20
