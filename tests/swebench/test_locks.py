"""Requirements files read from a mirror at the setup commit and resolved into a stored, stable lock."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devloop.swebench.environments import RequirementsSource, SwebenchEnvironment
from devloop.swebench.locks import Locker, LockError, mirror_reader
from devloop.swebench.records import fill_environments
from devloop.tasks.model import Task

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    # A wheel is a zip with its metadata; resolving reads nothing else.
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as whl:
        whl.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        )
        whl.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{info}/RECORD", "")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A repository whose setup commit has a requirements file with `-r`, `-e .` and a yanked package;
    the next commit changes it (the lock must read the setup commit's)."""
    repo = tmp_path_factory.mktemp("mirror") / "owner__name"
    (repo / "reqs").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "reqs" / "base.txt").write_text("beta>=1\n")
    (repo / "reqs" / "dev.txt").write_text("-r base.txt\n-e .\n# a comment\nalpha<2\ntypes-pkg_resources\n")
    (repo / ".gitattributes").write_text("*.txt filter=evil\n")  # must not be applied
    (repo / "setup.cfg").write_text("[options]\ninstall_requires =\n    # the runtime needs\n    alpha\n")
    (repo / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["gamma"]\n[project.optional-dependencies]\ndev = ["beta<1"]\n'
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "setup")
    setup = _git(repo, "rev-parse", "HEAD")
    (repo / "reqs" / "dev.txt").write_text("alpha==2.0\n")
    _git(repo, "commit", "-qam", "later")
    return repo, setup


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    _wheel(folder, "alpha", "1.0", ("beta",))
    _wheel(folder, "alpha", "2.0")
    _wheel(folder, "beta", "1.5")
    _wheel(folder, "beta", "0.5")
    _wheel(folder, "gamma", "3.0")
    _wheel(folder, "types-setuptools", "69.0")
    _wheel(folder, "pip", "24.0")
    return folder


def _environment(**fields) -> SwebenchEnvironment:
    return SwebenchEnvironment.model_validate(
        {
            "python": PYTHON,
            "test_cmd": "pytest",
            "log_parser": "pytest",
            "source": "test",
            "requirements": RequirementsSource(paths=["missing.txt", "reqs/dev.txt"]),
            **fields,
        }  # fmt: skip
    )


def _task(repo: Path, commit: str) -> Task:
    return Task.model_validate(
        {
            "instance_id": "owner__name-1",
            "repo": "owner/name",
            "base_commit": commit,
            "problem_statement": "",
            "FAIL_TO_PASS": [],
            "repo_path": str(repo),
        }  # fmt: skip
    )


def test_the_mirror_is_read_at_the_commit_without_its_attributes(mirror: tuple[Path, str]) -> None:
    repo, setup = mirror
    read = mirror_reader(repo, setup)
    assert read("reqs/dev.txt") is not None and "alpha<2" in (read("reqs/dev.txt") or "")
    assert read("nope.txt") is None
    with pytest.raises(LockError, match="environment_setup_commit 000000000000 is not in"):
        mirror_reader(repo, "0" * 40)


def test_requirements_are_expanded_layered_locked_and_stored(
    mirror: tuple[Path, str], index: Path, tmp_path: Path
) -> None:
    repo, setup = mirror
    own_index = shutil.copytree(index, tmp_path / "index")
    locker = Locker(tmp_path, index_args=["--no-index", "--find-links", str(own_index)])
    environment = _environment(pip=["beta==1.5"])
    environment = environment.model_copy(
        update={"requirements": RequirementsSource(paths=["missing.txt", "reqs/dev.txt"], commit=setup)}
    )
    pins = locker.environment_pins(_task(repo, setup), environment, None)
    # -r base.txt expanded (beta>=1 excludes 0.5), -e . dropped, the yanked package replaced, the
    # setup commit's alpha<2 (not the later commit's alpha==2.0), the spec's pin layered on top, and the
    # build backend pyproject.toml names (gamma) under both.
    assert pins == ["alpha==1.0", "beta==1.5", "gamma==3.0", "types-setuptools==69.0"]
    stored = list((tmp_path / "requirement-locks").glob("*.txt"))
    assert len(stored) == 1
    # The stored lock answers again with no index at all: the pins (and the env cache key) stay put.
    shutil.rmtree(own_index)
    own_index.mkdir()
    assert locker.environment_pins(_task(repo, setup), environment, None) == pins


def test_an_environment_of_pins_only_gets_its_build_backend_too(
    mirror: tuple[Path, str], index: Path, tmp_path: Path
) -> None:
    repo, setup = mirror
    locker = Locker(tmp_path, index_args=["--no-index", "--find-links", str(index)])
    pins_only = _environment(requirements=None, pip=["alpha==2.0"])
    task = _task(repo, setup)
    assert locker.environment_pins(task, pins_only, None) == ["alpha==2.0", "gamma==3.0"]
    # No mirror: the pins resolved as they are (extracting the tree fails that task anyway).
    assert locker.environment_pins(_task(tmp_path / "none", setup), pins_only, None) == ["alpha==2.0"]


def test_the_extras_the_install_asks_for_are_locked_too(
    mirror: tuple[Path, str], index: Path, tmp_path: Path
) -> None:
    repo, setup = mirror
    locker = Locker(tmp_path, index_args=["--no-index", "--find-links", str(index)])
    with_dev = _environment(requirements=None, pip=[], install="python -m pip install -e '.[dev]'")
    # setup.cfg's install_requires (alpha, newest fits), the dev extra (beta<1), the build backend (gamma).
    # pip too: the install runs pip, whose release is the lock's date (pip 25 dropped `setup.py develop`).
    assert locker.environment_pins(_task(repo, setup), with_dev, None) == [
        "alpha==2.0",
        "beta==0.5",
        "gamma==3.0",
        "pip==24.0",
    ]


def test_project_constraints_join_the_pins_and_win_a_conflict(
    mirror: tuple[Path, str], index: Path, tmp_path: Path
) -> None:
    repo, setup = mirror
    locker = Locker(tmp_path, index_args=["--no-index", "--find-links", str(index)])
    dev = "python -m pip install -e '.[dev]'"
    agreeing = _environment(requirements=None, pip=["alpha==1.0"], install=dev)
    assert locker.environment_pins(_task(repo, setup), agreeing, None) == [
        "alpha==1.0",
        "beta==0.5",
        "gamma==3.0",
        "pip==24.0",
    ]
    # beta==1.5 against the dev extra's beta<1: installed last officially, the project's constraint wins.
    conflicting = _environment(requirements=None, pip=["beta==1.5"], install=dev)
    assert "beta==0.5" in locker.environment_pins(_task(repo, setup), conflicting, None)


def test_an_unresolvable_or_absent_requirement_names_the_missing_piece(
    mirror: tuple[Path, str], index: Path, tmp_path: Path
) -> None:
    repo, setup = mirror
    locker = Locker(tmp_path, index_args=["--no-index", "--find-links", str(index)])
    with pytest.raises(LockError, match=f"resolution of the requirements for Python {PYTHON}: .*nosuchpkg"):
        locker.lock(["nosuchpkg==1"], PYTHON)
    absent = _environment(requirements=RequirementsSource(paths=["a.txt", "b.txt"], commit=setup))
    with pytest.raises(LockError, match=rf"the requirements file \(a.txt or b.txt\) at {setup[:12]} in "):
        locker.environment_pins(_task(repo, setup), absent, None)
    with pytest.raises(LockError, match="no such Python 2.1|no Python 2.1"):
        locker.lock(["alpha"], "2.1")


def test_fill_without_a_mirror_grades_env_error_naming_where_it_looked(tmp_path: Path) -> None:
    task = Task.model_validate(
        {
            "instance_id": "django__django-11099",
            "repo": "django/django",
            "version": "3.0",
            "base_commit": "a" * 40,
            "environment_setup_commit": "b" * 40,
            "problem_statement": "",
            "FAIL_TO_PASS": [],
        }  # fmt: skip
    )
    fill = fill_environments([task], locker=Locker(tmp_path), mirrors=tmp_path)
    assert (fill.filled, fill.unfilled) == (0, 1) and task.environment is None
    (reason,) = task.environment_missing
    assert reason.startswith("the requirements file (tests/requirements/py3.txt) from a mirror: ")
    assert "no repository for django/django" in reason


def test_the_setuptools_scm_version_comes_from_the_mirror_tags(tmp_path: Path) -> None:
    from devloop.swebench.declared import scm_version

    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    assert scm_version(repo, first) is None  # no tag
    _git(repo, "tag", "v5.4.0")
    assert scm_version(repo, first) == "5.4.0"
    _git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    second = _git(repo, "rev-parse", "HEAD")
    assert scm_version(repo, second) == f"5.4.1.dev1+g{second[:7]}"
    _git(repo, "tag", "8.0.0.dev0")
    assert scm_version(repo, second) == "8.0.0.dev0"
    _git(repo, "commit", "-q", "--allow-empty", "-m", "three")
    third = _git(repo, "rev-parse", "HEAD")
    assert scm_version(repo, third) == f"8.0.0.dev1+g{third[:7]}"  # a dev tag's line, a valid version
    locker = Locker(tmp_path / "cache")
    assert locker.scm_env(_task(repo, third), None) == {
        "SETUPTOOLS_SCM_PRETEND_VERSION": f"8.0.0.dev1+g{third[:7]}"
    }


def test_setup_py_requirements_are_parsed_never_run() -> None:
    from devloop.swebench.declared import setup_py_requires

    setup_py = (
        "import os\nfrom setuptools import setup\nREQS = ['a>=1', 'b']\nos.system('touch /tmp/ran')\n"
        "setup(install_requires=REQS, setup_requires=['scm'], extras_require={'dev': ['c'], 'doc': ['d']},"
        " tests_require=[x for x in 'ef'])\n"
    )
    files = {"setup.py": setup_py}
    assert setup_py_requires(files.get, ["dev"]) == ["a>=1", "b", "scm", "c"]
    assert setup_py_requires({"setup.py": "setup(install_requires=compute())"}.get) == []
    assert setup_py_requires({"setup.py": "def broken(:"}.get) == []


def test_an_exact_pin_lifts_the_date_cutoff_for_its_package_alone() -> None:
    from devloop.swebench.locks import exact_pins

    lines = ["tox==4.16.0", "a==1.*", "b>=2", 'Jinja2 == 2.11.3 ; python_version<"3.9"', "c[x]==1.0", "d"]
    assert exact_pins(lines) == ["c", "jinja2", "tox"]


SPHINX_LIKE_SETUP = """install_requires = [
    'sphinxcontrib-applehelp',
    'Jinja2>=2.3',
    'alabaster>=0.7,<0.8',
    'packaging',
]
extras_require = {'test': ['pytest', 'cython']}
setup(name='Sphinx', install_requires=install_requires, extras_require=extras_require)
"""
SPHINX_LIKE_INSTALL = """set -euxo pipefail
sed -i 's/pytest/pytest -rA/' tox.ini
sed -i 's/Jinja2>=2.3/Jinja2<3.0/' setup.py
sed -i 's/sphinxcontrib-applehelp/sphinxcontrib-applehelp<=1.0.7/' setup.py
sed -i 's/alabaster>=0.7,<0.8/alabaster>=0.7,<0.7.12/' setup.py
sed -i "s/'packaging',/'packaging', 'markupsafe<=2.0.1',/" setup.py
sed -i 's/requires = \\["setuptools",/requires = \\["setuptools==68.0.0",/' pyproject.toml
python -m pip install -e .[test]"""


def test_the_install_scripts_sed_edits_are_read_as_sed_makes_them(tmp_path: Path) -> None:
    from devloop.swebench.declared import project_name, project_requires
    from devloop.swebench.sed import edited_reader, sed_edits

    files = {"setup.py": SPHINX_LIKE_SETUP, "pyproject.toml": 'requires = ["setuptools", "wheel"]\n'}
    edits = sed_edits(SPHINX_LIKE_INSTALL)
    assert [e[0] for e in edits] == ["tox.ini", *["setup.py"] * 4, "pyproject.toml"]
    read = edited_reader(files.get, SPHINX_LIKE_INSTALL)
    # The same edits by sed itself, where it is installed: byte for byte what devloop reads.
    sed = shutil.which("sed")
    if sed is not None:
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        for line in SPHINX_LIKE_INSTALL.splitlines():
            if line.startswith("sed ") and "tox.ini" not in line:
                subprocess.run(["bash", "-c", line], cwd=tmp_path, check=True)
        for name in files:
            assert read(name) == (tmp_path / name).read_text()
    # This pyproject.toml has no [build-system] table, so pip's default backend comes first.
    assert project_requires(read, ["test"]) == [
        "setuptools>=40.8.0", "wheel", "sphinxcontrib-applehelp<=1.0.7", "Jinja2<3.0", "alabaster>=0.7,<0.7.12", "packaging",
        "markupsafe<=2.0.1", "pytest", "cython",
    ]  # fmt: skip
    assert project_name(read) == "Sphinx"
    assert project_name({"pyproject.toml": '[project]\nname = "pkg"\n'}.get) == "pkg"
    assert project_name({"setup.cfg": "[metadata]\nname = cfgpkg\n"}.get) == "cfgpkg"
    assert project_name({"setup.py": "setup(name=compute())"}.get) is None


def test_a_dependency_needing_another_release_of_the_project_is_ruled_out(tmp_path: Path) -> None:
    # plugin 2.0 needs proj>=5, as sphinxcontrib-applehelp 1.0.7 needs Sphinx>=5: installing proj 3.x,
    # pip would take plugin 1.0, and so must the lock (no proj from the index may enter it).
    from devloop.swebench.declared import ProjectStandIn

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "plugin", "1.0")
    _wheel(wheels, "plugin", "2.0", ("proj>=5",))
    _wheel(wheels, "proj", "5.0")
    _wheel(wheels, "six", "1.0")
    locker = Locker(tmp_path / "cache", index_args=["--no-index", "--find-links", str(wheels)])
    stand_in = ProjectStandIn(name="proj", version="3.1.dev4+gabc", requires=("plugin", "six<2"))
    assert locker._lock_project(["six==1.0"], stand_in, PYTHON) == ["plugin==1.0", "six==1.0"]
    # A spec pin the project contradicts gives way, as the official install runs last (Jinja2==3.0.3
    # against sphinx's edited Jinja2<3.0).
    _wheel(wheels, "six", "2.0")
    newer = ProjectStandIn(name="proj", version="3.1", requires=("six>=2",))
    assert locker._lock_project(["six==1.0", "plugin==1.0"], newer, PYTHON) == ["plugin==1.0", "six==2.0"]
    # Without a version the project cannot stand in: the old join, which lets proj 5.0 in.
    nameless = ProjectStandIn(name="proj", version=None, requires=("plugin",))
    assert "proj==5.0" in locker._lock_project([], nameless, PYTHON)


def test_a_tree_naming_no_build_system_gets_pips_default_backend_locked(tmp_path: Path) -> None:
    # seaborn 0.12 (setup.py only) installs with --no-build-isolation; left out of the lock, setuptools
    # would be the venv seed's, whose `setup.py develop` (80+) runs an isolated `pip install -e .` that
    # downloads setuptools, and the sandbox has no network.
    from devloop.swebench.declared import PIP_DEFAULT_BUILD_REQUIRES, project_requires

    assert PIP_DEFAULT_BUILD_REQUIRES == ("setuptools>=40.8.0", "wheel")  # pip's own fallback
    setup_only = {"setup.py": "setup(install_requires=['numpy>=1.17'])\n"}
    assert project_requires(setup_only.get) == ["setuptools>=40.8.0", "wheel", "numpy>=1.17"]
    no_table = {**setup_only, "pyproject.toml": "[tool.black]\nline-length = 88\n"}
    assert project_requires(no_table.get) == ["setuptools>=40.8.0", "wheel", "numpy>=1.17"]
    # A tree that names its backend gets that one alone.
    own = {**setup_only, "pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.2"]\n'}
    assert project_requires(own.get) == ["flit_core>=3.2", "numpy>=1.17"]

    repo = tmp_path / "owner__name"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "setup.py").write_text("from setuptools import setup\nsetup(name='pkg')\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "setup.py only")
    commit = _git(repo, "rev-parse", "HEAD")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in (("setuptools", "69.5.1"), ("wheel", "0.43.0"), ("pip", "24.0"), ("alpha", "1.0")):
        _wheel(wheels, name, version)
    locker = Locker(tmp_path / "cache", index_args=["--no-index", "--find-links", str(wheels)])
    environment = _environment(requirements=None, pip=["alpha==1.0"], install="python -m pip install -e .")
    assert locker.environment_pins(_task(repo, commit), environment, None) == [
        "alpha==1.0", "pip==24.0", "setuptools==69.5.1", "wheel==0.43.0",
    ]  # fmt: skip


def test_a_failed_build_names_the_exception_its_build_printed():
    import subprocess

    from devloop.swebench.locks import _failure

    # uv's stderr for an sdist whose setup.py needs a setuptools older than the build environment's.
    stderr = (
        "error: Failed to build `markupsafe==1.0`\n"
        "  cause: The build backend returned an error\n"
        "  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)\n"
        "\n         [stderr]\n         Traceback (most recent call last):\n"
        '           File "setup.py", line 6, in <module>\n'
        "             from setuptools import setup, Extension, Feature\n"
        "         ImportError: cannot import name 'Feature'\n\n"
        "hint: Build failures usually indicate a problem with the package or the build environment\n"
    )
    reason = _failure(subprocess.CompletedProcess([], 1, "", stderr))
    assert reason == "error: Failed to build `markupsafe==1.0`: ImportError: cannot import name 'Feature'"
    # A resolution failure that built nothing keeps uv's own lines only.
    plain = (
        "error: No solution found\n  Because nosuchpkg was not found, we cannot resolve.\nhint: check it\n"
    )
    assert _failure(subprocess.CompletedProcess([], 1, "", plain)) == (
        "error: No solution found Because nosuchpkg was not found, we cannot resolve."
    )
    assert _failure(subprocess.CompletedProcess([], 2, "", "")) == "exit 2"
