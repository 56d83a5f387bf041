"""The shipped spec table and its mapping to devloop environments, on the 300 SWE-bench Lite records."""

from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.swebench import environment_for, map_spec
from devloop.swebench.generate_specs import SHIPPED, build, render
from devloop.swebench.official import OfficialUnavailable
from devloop.swebench.specs import table
from devloop.tasks import EnvironmentSpec, Task

LITE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "swebench_lite_envs.json").read_text())[
    "records"
]


def _lite_pairs() -> collections.Counter[tuple[str, str]]:
    return collections.Counter((r["repo"], r["version"]) for r in LITE)


def test_the_table_carries_its_source_and_licence() -> None:
    raw = json.loads(SHIPPED.read_text())
    assert raw["swebench_version"] == "4.1.0"
    assert raw["license"].startswith("MIT License") and "Carlos E Jimenez" in raw["license"]
    assert "generate_specs" in raw["about"]


def test_every_lite_repo_and_version_has_a_spec_and_a_parser() -> None:
    pairs = _lite_pairs()
    assert len(LITE) == 300 and len(pairs) == 64
    missing = [pair for pair in pairs if table().spec(*pair) is None]
    assert missing == []
    assert {repo for repo, _ in pairs} <= set(table().log_parsers)


def test_lite_mapping_figures() -> None:
    """59 of the 64 Lite (repo, version) pairs (272 of 300 instances) map with nothing missing; the rest
    are matplotlib (conda environment, texlive and other apt packages, a qhull download) and xarray
    (a conda environment)."""
    pairs = _lite_pairs()
    clean = {pair for pair in pairs if not map_spec(*pair)[1]}
    assert len(clean) == 59
    assert sum(pairs[pair] for pair in clean) == 272
    blocked = {repo for repo, _ in set(pairs) - clean}
    assert blocked == {"matplotlib/matplotlib", "pydata/xarray"}
    reasons = collections.Counter(reason for pair in pairs for reason in map_spec(*pair)[1])
    assert any(r.startswith("a conda environment (ci/requirements/environment.yml") for r in reasons)
    assert any("texlive" in r for r in reasons)


def test_environment_for_a_record_uses_the_setup_commit_and_names_what_is_missing() -> None:
    record = next(r for r in LITE if r["repo"] == "django/django" and r["version"] == "3.0")
    env, missing = environment_for(record)
    assert missing == [] and env is not None
    assert env.log_parser == "django"
    assert env.test_cmd == "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1"
    assert env.env == {"LANG": "en_US.UTF-8", "LANGUAGE": "en_US:en", "LC_ALL": "en_US.UTF-8"}
    assert env.host.locale == "en_US.UTF-8"  # the official image runs locale-gen: a host fact, not a step
    assert env.requirements is not None
    assert env.requirements.paths == ["tests/requirements/py3.txt"]
    assert env.requirements.commit == record["environment_setup_commit"]

    xarray = next(r for r in LITE if r["repo"] == "pydata/xarray")
    env, missing = environment_for(xarray)
    assert env is None
    assert missing == [
        "a conda environment (ci/requirements/environment.yml or environment.yml), which devloop cannot build"
    ]


def test_environment_for_takes_a_task_and_reports_records_with_no_spec() -> None:
    task = Task(
        instance_id="x-1",
        repo="pylint-dev/pylint",
        base_commit="abc",
        problem_statement="",
        FAIL_TO_PASS=[],
        version="2.15",
    )
    env, missing = environment_for(task)
    assert missing == [] and env is not None
    assert env.host.cpus == 2.0 and env.log_parser == "pytest_options"
    assert (
        env.requirements is not None and env.requirements.commit == "abc"
    )  # no setup commit: the base commit
    assert environment_for({"repo": "pylint-dev/pylint", "version": "9.9"}) == (
        None,
        ["swebench 4.1.0 has no spec for pylint-dev/pylint version 9.9"],
    )
    assert environment_for({"repo": "a/b"})[1] == ["the record has no version, so it has no official spec"]


def test_install_steps_keep_tree_local_pre_install_and_stop_at_the_first_failure() -> None:
    env, missing = map_spec("sphinx-doc/sphinx", "3.5")
    assert missing == [] and env is not None and env.install is not None
    lines = env.install.splitlines()
    assert lines[0] == "set -euxo pipefail"
    assert lines[1] == "sed -i 's/pytest/pytest -rA/' tox.ini"
    # No build isolation: an isolated build would download its backend, and the sandbox has no network.
    assert lines[-2] == "python -m pip install --no-build-isolation -e .[test]"
    assert any("--no-build-isolation" in note for note in env.notes)
    # `tox --current-env -epy39` runs .tox/py39/bin/python: made the venv itself, so the tests see its
    # packages (a symlink to a venv's interpreter starts outside the venv).
    assert env.test_cmd == "tox --current-env -epy39 -v --"
    assert lines[-1] == 'mkdir -p .tox && ln -sfn "$VIRTUAL_ENV" .tox/py39'
    env, _ = map_spec("pytest-dev/pytest", "5.4")
    assert env is not None and ".tox" not in (env.install or "")
    env, missing = map_spec("pylint-dev/pylint", "2.8")
    assert missing == ["system packages (apt-get install): libenchant-2-dev hunspell-en-us"]


def test_what_devloop_cannot_run_is_named_and_the_partial_environment_kept() -> None:
    env, missing = map_spec("matplotlib/matplotlib", "3.5")
    assert env is not None and env.install is not None
    assert missing[0] == "a conda environment (environment.yml), which devloop cannot build"
    assert missing[1].startswith("system packages (apt-get install): imagemagick ffmpeg texlive")
    assert missing[2] == 'a download at setup time: wget -O "$QHULL_TAR" "$QHULL_URL"'
    assert 'QHULL_BUILD_DIR="$PWD/build"' in env.install.splitlines()  # the official tree is /testbed


def test_unknown_spec_keys_and_commands_that_are_not_exports_are_missing_pieces() -> None:
    source = dataclasses.replace(
        table(),
        specs={
            "o/r": {
                "1.0": {"python": "3.9", "test_cmd": "pytest", "gpu": True, "eval_commands": ["ulimit -n 64"]}
            }
        },
        log_parsers={"o/r": "pytest"},
    )
    env, missing = map_spec("o/r", "1.0", source=source)
    assert env is not None and env.install is None
    assert missing == [
        "spec key 'gpu', which devloop does not understand",
        "an eval command that is not an export: ulimit -n 64",
    ]


def test_conda_packages_become_pip_pins_layered_under_pip_packages() -> None:
    env, missing = map_spec("scikit-learn/scikit-learn", "0.20")
    assert missing == [] and env is not None
    # conda "numpy scipy cython pytest pandas matplotlib", then pip "cython numpy==1.19.2 setuptools scipy==1.5.2"
    assert env.pip == [
        "numpy==1.19.2",
        "scipy==1.5.2",
        "cython",
        "pytest",
        "pandas",
        "matplotlib",
        "setuptools",
    ]
    assert env.notes == ["conda packages installed from PyPI: numpy scipy cython pytest pandas matplotlib"]


def test_environments_with_devloops_parsers_are_valid_environment_specs() -> None:
    for repo, version in _lite_pairs():
        env, missing = map_spec(repo, version)
        assert env is not None
        if env.log_parser in ("pytest", "sympy"):  # the names devloop's EnvironmentSpec accepts today
            spec = EnvironmentSpec.model_validate(env.environment_fields())
            assert spec.test_cmd == env.test_cmd and spec.python == env.python


def test_regenerating_the_table_is_byte_identical() -> None:
    try:
        text = render(build())
    except OfficialUnavailable as exc:
        pytest.skip(f"regeneration needs the reference package: {exc}")
    assert text == SHIPPED.read_text(encoding="utf-8")
    assert render(build()) == text


def test_generate_specs_check_reports_a_stale_file(tmp_path: Path) -> None:
    try:
        build()
    except OfficialUnavailable as exc:
        pytest.skip(f"regeneration needs the reference package: {exc}")
    stale = tmp_path / "specs.json"
    stale.write_text("{}\n")
    cmd = [sys.executable, "-m", "devloop.swebench.generate_specs", "--output", str(stale)]
    proc = subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "differs" in proc.stderr
    assert subprocess.run(cmd, capture_output=True, text=True, check=False).returncode == 0
    assert subprocess.run([*cmd, "--check"], capture_output=True, text=True, check=False).returncode == 0
    assert stale.read_text() == SHIPPED.read_text()
