"""Validation of every built-in task: FAIL_TO_PASS fail and PASS_TO_PASS pass at base; all pass with gold.

Statuses come from JUnit XML, independently of the harness's log parsers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from devloop.suite import BUILTIN_DIR, expected_base_commit, list_builtin, materialize_builtin

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = {
    "single-function-bug",
    "cross-file-change",
    "new-option",
    "regression-trap",
    "performance",
    "import-error",
    "parsing-edge-case",
    "pagination-off-by-one",
    "concurrency",
    "config-loading",
}


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "GIT_"))}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    cache = tmp_path_factory.mktemp("suite-cache")
    return {
        r["instance_id"].removeprefix("devloop__").removesuffix("-1"): r for r in materialize_builtin(cache)
    }


def _junit_key(node_id: str) -> tuple[str, str]:
    path, *rest = node_id.split("::")
    classname = ".".join([path.removesuffix(".py").replace("/", "."), *rest[:-1]])
    return classname, rest[-1]


def _statuses(xml_path: Path) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        status = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        key = (case.get("classname", ""), case.get("name", ""))
        # A test failing in setup and teardown appears twice; any failure wins.
        if out.get(key) != "failed":
            out[key] = status
    return out


def _prepare(record: dict[str, Any], dest: Path, with_gold: bool) -> Path:
    shutil.copytree(record["repo_path"], dest)
    patches = [record["test_patch"]] + ([record["patch"]] if with_gold else [])
    for text in patches:
        subprocess.run(["git", "apply", "-"], cwd=dest, input=text, text=True, check=True, env=_clean_env())
    return dest


def _test_files(test_patch: str) -> list[str]:
    """The files test.patch touches: like SWE-bench graders, only these are run."""
    return sorted(set(re.findall(r"^diff --git a/(\S+) b/", test_patch, re.M)))


def _start_pytest(repo: Path, files: list[str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-rA",
        "-p",
        "no:cacheprovider",
        "-q",
        "--junitxml=junit.xml",
        *files,
    ]
    # The tasks pin plain pytest; this environment's extra plugins would only slow start-up.
    env = {**_clean_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.parametrize("slug", list_builtin())
def test_task_validates(slug: str, records: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    record = records[slug]
    base = _prepare(record, tmp_path / "base", with_gold=False)
    gold = _prepare(record, tmp_path / "gold", with_gold=True)
    # Base and gold runs at once: two cores, half the wall time.
    files = _test_files(record["test_patch"])
    procs = {name: _start_pytest(repo, files) for name, repo in (("base", base), ("gold", gold))}
    logs = {
        name: proc.communicate(timeout=120)[0].decode(errors="replace")[-3000:]
        for name, proc in procs.items()
    }
    at_base, with_gold = _statuses(base / "junit.xml"), _statuses(gold / "junit.xml")

    for test in record["FAIL_TO_PASS"]:
        assert at_base.get(_junit_key(test)) == "failed", f"{test} should fail at base\n{logs['base']}"
    for test in record["PASS_TO_PASS"]:
        assert at_base.get(_junit_key(test)) == "passed", f"{test} should pass at base\n{logs['base']}"
    for test in record["FAIL_TO_PASS"] + record["PASS_TO_PASS"]:
        assert with_gold.get(_junit_key(test)) == "passed", f"{test} should pass with gold\n{logs['gold']}"


def test_task_records_are_complete(records: dict[str, dict[str, Any]]) -> None:
    assert len(records) >= 20
    assert {r["category"] for r in records.values()} >= CATEGORIES
    for slug, r in records.items():
        assert r["instance_id"] == f"devloop__{slug}-1"
        assert r["repo"] == f"devloop-builtin/{slug}"
        assert r["category"] in CATEGORIES, slug
        assert r["FAIL_TO_PASS"] and len(r["PASS_TO_PASS"]) >= 3, slug
        assert not set(r["FAIL_TO_PASS"]) & set(r["PASS_TO_PASS"]), slug
        for test in r["FAIL_TO_PASS"] + r["PASS_TO_PASS"]:
            # Ids must survive log parsers and command lines unchanged: no spaces, escapes or odd bytes.
            assert test.isascii() and not any(c in test for c in " \\'\""), (
                f"{slug}: awkward test id {test!r}"
            )
        assert r["patch"].startswith("diff --git a/") and r["test_patch"].startswith("diff --git a/"), slug
        assert r["environment"]["python"] == "3.11" and r["environment"]["pip"] == ["pytest==8.3.3"], slug
        assert r["environment_setup_commit"] == r["base_commit"], slug
        assert len(r["problem_statement"]) > 200, slug
        if r["category"] == "regression-trap":
            assert r.get("notes"), f"{slug}: a regression trap must explain its trap in notes"


@pytest.mark.parametrize("slug", list_builtin())
def test_repo_size(slug: str) -> None:
    py_files = list((BUILTIN_DIR / slug / "repo").rglob("*.py"))
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in py_files)
    assert 200 <= lines <= 2000, f"{slug}: {lines} lines of Python"
    assert len([p for p in py_files if "tests" not in p.parts]) >= 3, f"{slug}: needs several modules"


def test_base_commit_is_deterministic(tmp_path: Path) -> None:
    slugs = list_builtin()[:3]
    first = materialize_builtin(tmp_path / "one", slugs)
    second = materialize_builtin(tmp_path / "two", slugs)
    assert [r["base_commit"] for r in first] == [r["base_commit"] for r in second]
    assert [r["base_commit"] for r in first] == [expected_base_commit(s) for s in slugs]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=first[0]["repo_path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert head == first[0]["base_commit"]


def test_warm_cache_is_reused_and_stale_one_rebuilt(tmp_path: Path) -> None:
    slug = list_builtin()[0]
    (record,) = materialize_builtin(tmp_path, [slug])
    marker = Path(record["repo_path"]) / "untracked-marker"
    marker.write_text("kept when reused")
    materialize_builtin(tmp_path, [slug])
    assert marker.exists()
    shutil.rmtree(Path(record["repo_path"]) / ".git")
    (again,) = materialize_builtin(tmp_path, [slug])
    assert again["base_commit"] == record["base_commit"]
    assert not marker.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary directories left behind"


@pytest.mark.slow
def test_project_pytest_does_not_collect_suite_tests() -> None:
    testpaths = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert all(not BUILTIN_DIR.is_relative_to(PROJECT_ROOT / p) for p in testpaths["testpaths"])
    assert not list(BUILTIN_DIR.rglob("conftest.py"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
    )
    assert "tests/suite/test_builtin_suite.py" in proc.stdout
    assert "suite/builtin" not in proc.stdout


def test_concurrent_materialise_into_one_cache(tmp_path: Path) -> None:
    slugs = list_builtin()[:4]
    code = (
        "import json, sys; from pathlib import Path; from devloop.suite import materialize_builtin; "
        "print(json.dumps([r['base_commit'] for r in materialize_builtin(Path(sys.argv[1]), sys.argv[2:])]))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), *slugs], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert len(set(outputs)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(slugs)
