"""Which environment `choose_environment` picks, in order, and what it reads from lock and requirement
files; nothing is built here (a cached env waits for `prepare`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devloop.eval.envs import find_uv
from devloop.repoenv import EnvChoiceError, choose_environment
from devloop.repoenv.build import lock_pins, pyproject_requirements, requirement_lines
from devloop.repoenv.model import host_path

UV = find_uv()
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed")


def venv(path: Path) -> Path:
    subprocess.run([UV, "venv", "-q", str(path), "--python", sys.executable], check=True)
    return path


def choose(repo: Path, tmp_path: Path, **kw) -> object:
    environ = {"PATH": "/usr/local/bin:/usr/bin:/bin", **kw.pop("environ", {})}
    return choose_environment(repo, environ=environ, cache_dir=tmp_path / "cache", **kw)


@needs_uv
def test_an_active_virtual_env_beats_the_repos_venv_which_beats_a_lock(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "uv.lock").write_text("version = 1\n")
    assert choose(repo, tmp_path).kind == "uv"  # a lock alone: a cached env, still to build
    venv(repo / ".venv")
    chosen = choose(repo, tmp_path)
    assert (chosen.kind, chosen.venv, chosen.pending) == ("repo_venv", repo / ".venv", None)
    active = venv(tmp_path / "active")
    chosen = choose(repo, tmp_path, environ={"VIRTUAL_ENV": str(active)})
    assert (chosen.kind, chosen.venv, chosen.reason) == ("virtual_env", active, "the active VIRTUAL_ENV")
    assert chosen.variables(tmp_path / "ws")["PATH"].startswith(f"{active}/bin:")


@pytest.mark.parametrize(
    ("files", "kind", "reason"),
    [
        ({"poetry.lock": ""}, "poetry", "a poetry project: poetry.lock installed with uv"),
        ({"pdm.lock": ""}, "pdm", "a pdm project: pdm.lock installed with uv"),
        ({"requirements.txt": "a\n", "requirements-dev.txt": "b\n"}, "requirements", "requirements-dev.txt, requirements.txt installed with uv"),
        ({"pyproject.toml": '[project]\nname = "p"\ndependencies = ["attrs"]\n'}, "pyproject", "pyproject.toml's dependencies installed with uv"),
    ],
)  # fmt: skip
def test_declared_dependencies_wait_for_a_cached_build(
    tmp_path: Path, files: dict, kind: str, reason: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    chosen = choose(repo, tmp_path)
    assert chosen.kind == kind and chosen.pending is not None
    assert chosen.line() == f"env: {reason} (cached env, built before the run)"


@needs_uv
def test_a_package_inside_a_larger_repository_uses_the_venv_at_its_top(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    (top / ".git").mkdir(parents=True)
    (top / "pkgs" / "one").mkdir(parents=True)
    venv(top / ".venv")
    chosen = choose(top / "pkgs" / "one", tmp_path)
    assert (chosen.kind, chosen.venv, chosen.reason) == ("repo_venv", top / ".venv", f"the .venv of {top}")


def test_nothing_declared_falls_back_to_path(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text('[project]\nname = "p"\n')  # no dependencies
    chosen = choose(tmp_path / "repo", tmp_path)
    assert chosen.kind == "path" and chosen.reason.startswith(
        "no repo environment found; the python3 on PATH"
    )
    assert chosen.variables(tmp_path)["VIRTUAL_ENV"] == ""


def test_bad_flags_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EnvChoiceError, match="give one of --python or --venv"):
        choose(tmp_path, tmp_path, python=Path(sys.executable), venv=tmp_path)
    with pytest.raises(EnvChoiceError, match=f"--venv {tmp_path}: not a virtual environment"):
        choose(tmp_path, tmp_path, venv=tmp_path)


@needs_uv
def test_an_editable_install_of_the_repo_imports_the_workspaces_copy(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    env = venv(repo / ".venv")
    site = next(env.glob("lib/python*/site-packages"))
    (site / "_pkg.pth").write_text(f"{repo / 'src'}\n")
    (site / "other.pth").write_text("/somewhere/else\nimport sys\n")
    chosen = choose(repo, tmp_path)
    assert chosen.remaps == ["src"]
    assert chosen.variables(tmp_path / "ws")["PYTHONPATH"] == str(tmp_path / "ws" / "src")


def test_shim_directories_and_devloops_venv_leave_the_sandbox_path(tmp_path: Path) -> None:
    own = Path(sys.prefix) / "bin"
    path = f"{own}:/home/u/.pyenv/shims:/home/u/.asdf/shims:/usr/bin:/bin"
    kept = host_path({"PATH": path})
    assert Path("/usr/bin") in kept and not any(p.name == "shims" for p in kept)
    assert (own in kept) == (sys.prefix == sys.base_prefix)


def test_lock_and_requirement_files_are_read_as_declared(tmp_path: Path) -> None:
    lock = tmp_path / "poetry.lock"
    lock.write_text(
        '[[package]]\nname = "attrs"\nversion = "23.1.0"\n\n'
        '[[package]]\nname = "colorama"\nversion = "0.4.6"\nmarkers = "sys_platform == \\"win32\\""\n'
    )
    assert lock_pins(lock) == ["attrs==23.1.0", 'colorama==0.4.6 ; sys_platform == "win32"']
    (tmp_path / "base.txt").write_text("six>=1  # used\n")
    (tmp_path / "requirements.txt").write_text("-r base.txt\n# comment\n-e .\npytest==8.0\n")
    assert requirement_lines(tmp_path / "requirements.txt") == ["six>=1", "pytest==8.0"]
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "p"\ndependencies = ["attrs"]\n[project.optional-dependencies]\ntest = ["pytest"]\n'
        'docs = ["sphinx"]\n[dependency-groups]\ndev = ["ruff"]\n'
        '[tool.poetry.dependencies]\npython = "^3.9"\nrequests = "^2.31"\nidna = {version = "3.4"}\n'
    )
    assert pyproject_requirements(pyproject) == ["attrs", "pytest", "ruff", "requests>=2.31", "idna==3.4"]


def planted_venv(repo: Path, marker: Path) -> Path:
    """A .venv as a patch could write it: a real pyvenv.cfg naming this interpreter's installation, and a
    bin/python and a .pth file that would each leave `marker` if anything ran them."""
    venv = repo / ".venv"
    major_minor = ".".join(map(str, sys.version_info[:2]))
    site = venv / "lib" / f"python{major_minor}" / "site-packages"
    site.mkdir(parents=True)
    (site / "evil.pth").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pth')\n")
    home = Path(sys.base_prefix) / "bin"
    version = ".".join(map(str, sys.version_info[:3]))
    (venv / "pyvenv.cfg").write_text(f"home = {home}\nversion = {version}\n")
    (venv / "bin").mkdir()
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho ran > {marker}\nexec {home}/python3 "$@"\n')
    python.chmod(0o755)
    return venv


def test_a_venv_in_the_users_tree_is_read_never_run_on_the_host(tmp_path: Path) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran-on-the-host"
    (repo / ".git").mkdir(parents=True)
    venv = planted_venv(repo, marker)
    chosen = choose(repo, tmp_path)
    assert not marker.exists()
    assert (chosen.kind, chosen.venv, chosen.version) == (
        "repo_venv",
        venv,
        ".".join(map(str, sys.version_info[:3])),
    )
    assert Path(sys.base_prefix) / "lib" in chosen.read_only()  # the installation the sandbox needs
    # Activated, or put on PATH, it is still only read.
    activated = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:/usr/bin:/bin"}
    assert choose(repo, tmp_path, environ=activated).kind in ("virtual_env", "repo_venv")
    (venv / "pyvenv.cfg").write_text("home = /nonexistent\nversion = 3.11.7\n")  # not a venv: skipped
    fallen = choose(repo, tmp_path, environ={"PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"})
    assert fallen.kind == "path" and not fallen.python.is_relative_to(repo)
    assert not marker.exists()


@pytest.mark.parametrize(
    "cfg",
    [
        "version = 3.11.7\n",  # no home
        "home = bin\nversion = 3.11.7\n",  # not absolute
        f"home = {Path(sys.base_prefix) / 'bin'}\n",  # no version
        "home = {fake}\nversion = 3.11.7\n",  # an interpreter with no standard library beside it
    ],
)
def test_read_venv_accepts_only_a_cfg_naming_a_real_installation(tmp_path: Path, cfg: str) -> None:
    from devloop.repoenv.model import read_venv

    venv = planted_venv(tmp_path, tmp_path / "marker")
    fake = tmp_path / "fake" / "bin"
    fake.mkdir(parents=True)
    (fake / "python3").write_text("")
    (venv / "pyvenv.cfg").write_text(cfg.format(fake=fake))
    assert read_venv(venv) is None
