"""EnvironmentManager: interpreter discovery, one cached venv per key, locked and atomic builds, clones."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devloop.eval import EnvBuildError, EnvironmentManager, PythonNotFound
from devloop.tasks import EnvironmentSpec

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_python_for_finds_this_version_and_names_a_missing_one(tmp_path):
    manager = EnvironmentManager(tmp_path)
    found = manager.python_for(HERE)
    out = subprocess.run(
        [str(found), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert out.stdout.strip() == str(tuple(sys.version_info[:2]))
    with pytest.raises(PythonNotFound, match="no Python 2.1 found"):
        manager.python_for("2.1")


def test_cached_venv_is_reused_and_keyed_by_pins(env_manager, spec, env_cache):
    first = env_manager.venv_for(spec)
    again = EnvironmentManager(env_cache).venv_for(
        EnvironmentSpec(**{**spec.model_dump(), "test_cmd": "other"})
    )
    assert first == again  # test_cmd, install and env are not part of the key
    reordered = EnvironmentSpec(python=spec.python, pip=list(reversed([*spec.pip, "six"])))
    assert env_manager.key(reordered) != env_manager.key(spec)
    assert env_manager.key(EnvironmentSpec(python=spec.python, pip=["six", *spec.pip])) == env_manager.key(
        reordered
    )
    assert (first / "bin" / "pytest").is_file()


def test_parallel_requests_build_one_venv_once(tmp_path, monkeypatch):
    manager = EnvironmentManager(tmp_path)
    builds: list[int] = []
    real_build = manager._build

    def counting_build(spec, final):
        builds.append(1)
        real_build(spec, final)

    monkeypatch.setattr(manager, "_build", counting_build)
    spec = EnvironmentSpec(python=HERE)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(manager.venv_for(spec))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(set(results)) == 1
    assert (results[0] / "bin" / "python").exists()


def test_failed_build_leaves_no_venv_behind(tmp_path):
    manager = EnvironmentManager(tmp_path)
    spec = EnvironmentSpec(python=HERE, pip=[str(tmp_path / "no-such-package-dir")])
    with pytest.raises(EnvBuildError) as info:
        manager.venv_for(spec)
    assert "failed" in info.value.message and info.value.log
    assert list((tmp_path / "venvs").iterdir()) == []


def test_clone_is_private_and_its_scripts_point_at_the_clone(env_manager, spec, tmp_path):
    cached = env_manager.venv_for(spec)
    clone = env_manager.clone(cached, tmp_path / "venv")
    assert str(clone) in (clone / "bin" / "pytest").read_text().splitlines()[0]
    site = next(clone.glob("lib/python*/site-packages"))
    (site / "instance_only.pth").write_text("")
    assert not list(cached.glob("lib/python*/site-packages/instance_only.pth"))
    env = env_manager.env_vars(clone, EnvironmentSpec(python=spec.python, env={"X": "1"}))
    out = subprocess.run(["pytest", "--version"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and env["X"] == "1" and env["VIRTUAL_ENV"] == str(clone)


@pytest.mark.slow
def test_pip_builder_is_used_without_uv(tmp_path):
    manager = EnvironmentManager(tmp_path, use_uv=False)
    assert manager.builder == "pip"
    venv = manager.venv_for(EnvironmentSpec(python=HERE))
    assert (venv / "bin" / "pip").exists()


def test_installed_packages_are_byte_compiled(env_manager, spec):
    """As pip and the official images do: compiling at first import instead surfaces SyntaxWarnings, which
    `-W error` test setups turn into import errors."""
    venv = env_manager.venv_for(spec)
    pycs = list(venv.glob("lib/python*/site-packages/_pytest/__pycache__/*.pyc"))
    assert pycs, "the venv's packages were installed without byte-compiling them"
