"""Tiny task repositories built in tmp dirs, and one shared cached test environment per session."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devloop.eval import EnvironmentManager
from devloop.tasks import EnvironmentSpec, Task

CALC = """\
def add(a, b):
    return a - b


def mul(a, b):
    return a * b


def neg(a):
    return a
"""

CALC_FIXED = CALC.replace("return a - b", "return a + b").replace("    return a\n", "    return -a\n")

TESTS = """\
import pytest

from calc import mul


def test_mul():
    assert mul(2, 3) == 6


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    assert False


@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert mul(1, 1) == 2
"""

TEST_PATCH_ADDED = """

from calc import add, neg


def test_add():
    assert add(2, 3) == 5


@pytest.mark.parametrize("a,b", [(1, 2)], ids=["one two"])
def test_add_param(a, b):
    assert add(a, b) == 3


def test_neg():
    assert neg(4) == -4
"""


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def diff_of(repo: Path, changes: dict[str, str | None]) -> str:
    """The `git diff` that makes `changes` (path -> new content, None = delete) in `repo`, then undone."""
    for rel, text in changes.items():
        if text is None:
            (repo / rel).unlink()
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached")
    git(repo, "reset", "-q", "--hard", "HEAD")
    git(repo, "clean", "-fdq")
    return patch


@pytest.fixture(scope="session")
def env_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envcache")


@pytest.fixture(scope="session")
def spec() -> EnvironmentSpec:
    """The one test environment: this interpreter's version with this pytest (needs PyPI once a session)."""
    return EnvironmentSpec(
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        pip=[f"pytest=={pytest.__version__}"],
        test_cmd="pytest -rA -v -p no:cacheprovider",
    )


@pytest.fixture(scope="session")
def env_manager(env_cache: Path, spec: EnvironmentSpec) -> EnvironmentManager:
    manager = EnvironmentManager(env_cache)
    manager.venv_for(spec)  # built once for the session
    return manager


@pytest.fixture(scope="session")
def calc_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository with the buggy calc module and its tests; returns (repo, base_commit)."""
    repo = tmp_path_factory.mktemp("calc")
    (repo / "tests").mkdir()
    (repo / "calc.py").write_text(CALC)
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    (repo / "README.md").write_text("calc\n")
    (repo / "conftest.py").write_text("")  # puts the repository root on sys.path for `import calc`
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo, git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="session")
def calc_patches(calc_repo: tuple[Path, str]) -> dict[str, str]:
    repo, _ = calc_repo
    return {
        "gold": diff_of(repo, {"calc.py": CALC_FIXED}),
        "test": diff_of(repo, {"tests/test_calc.py": TESTS + TEST_PATCH_ADDED}),
        "half": diff_of(repo, {"calc.py": CALC.replace("return a - b", "return a + b")}),
    }


@pytest.fixture
def calc_diff(calc_repo: tuple[Path, str]) -> Callable[[dict[str, str | None]], str]:
    """Makes the diff of the calc repository to the given file contents (calc.py, tests/...)."""
    return lambda changes: diff_of(calc_repo[0], changes)


@pytest.fixture
def calc_sources() -> dict[str, str]:
    return {"calc.py": CALC, "fixed": CALC_FIXED, "tests": TESTS}


@pytest.fixture
def make_task(calc_repo: tuple[Path, str], calc_patches: dict[str, str], spec: EnvironmentSpec
              ) -> Callable[..., Task]:  # fmt: skip
    repo, base = calc_repo

    def make(instance_id: str = "calc__calc-1", environment: Any = "default", **fields: Any) -> Task:
        record: dict[str, Any] = {
            "instance_id": instance_id,
            "repo": "calc/calc",
            "base_commit": base,
            "problem_statement": "add() subtracts and neg() does nothing",
            "patch": calc_patches["gold"],
            "test_patch": calc_patches["test"],
            # A parametrised id with a space, as the official lists hold it: cut at the space (the official
            # pytest parser keys a test by the line's second whitespace-separated token).
            "FAIL_TO_PASS": ["tests/test_calc.py::test_add", "tests/test_calc.py::test_add_param[one",
                             "tests/test_calc.py::test_neg"],
            "PASS_TO_PASS": ["tests/test_calc.py::test_mul", "tests/test_calc.py::test_known_bug"],
            "repo_path": str(repo),
            "environment": spec.model_dump() if environment == "default" else environment,
        }  # fmt: skip
        record.update(fields)
        return Task.model_validate(record)

    return make


@pytest.fixture
def tmpdir_of_workdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's work dirs (and sandboxes' scratch dirs) go, to see what is left there."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where
