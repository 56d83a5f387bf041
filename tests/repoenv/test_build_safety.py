"""Building the repository's environment runs nothing from the repository on the host: after `--apply` it
holds the model's patch. Each planted vector leaves its marker unwritten and gives one line naming where it
is; a plain project still gets its env. Everything here is offline (uv's cache, local wheel dirs)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devloop.eval.envs import find_uv
from devloop.repoenv import choose_environment
from devloop.repoenv.build import EnvError, lock_pins, pyproject_requirements, requirement_lines, uv_sync
from devloop.repoenv.detect import prepare

UV = find_uv()
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not installed")
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
# uv's own cache (found before XDG_CACHE_HOME moves): what an offline build installs from.
UV_CACHE = subprocess.run([UV, "cache", "dir"], capture_output=True, text=True).stdout.strip() if UV else ""


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_PYTHON", BASE_PYTHON)
    if UV_CACHE:
        monkeypatch.setenv("UV_CACHE_DIR", UV_CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # prepare's fallback links
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


def backend(marker: Path) -> str:
    """An in-tree PEP 517 backend that leaves `marker` as soon as anything imports it."""
    return (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('built')\n"
        "def get_requires_for_build_wheel(*a, **k): return []\n"
        "def get_requires_for_build_editable(*a, **k): return []\n"
        "def build_wheel(*a, **k): raise SystemExit(1)\n"
        "def build_editable(*a, **k): raise SystemExit(1)\n"
    )


def package(root: Path, name: str, marker: Path, deps: str = "[]", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0"\nrequires-python = ">=3.8"\ndependencies = {deps}\n'
        f'{extra}[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (root / "backend.py").write_text(backend(marker))
    (root / "setup.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('setup')\n")
    return root


def build_through_prepare(repo: Path, tmp_path: Path) -> tuple[object, list[str]]:
    lines: list[str] = []
    chosen = choose_environment(repo, environ={"PATH": "/usr/bin:/bin"}, cache_dir=tmp_path / "cache")
    return prepare(chosen, repo, on_line=lines.append), lines


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("attrs==23.1\nevil @ file:./evil\n", ":2: 'evil @ file:./evil' is not a plain"),
        ("./evil\n", ":1: './evil' is not a plain"),
        ("git+https://example.invalid/evil.git#egg=evil\n", ":1: 'git+https://example.invalid/evil.git#egg=evil'"),
        ("-e ./evil\n", ":1: '-e ./evil' is an editable install"),
        ("--index-url https://example.invalid/simple\nattrs\n", ":1: option '--index-url' is not followed"),
        ("--extra-index-url=https://example.invalid/simple\n", ":1: option '--extra-index-url=https://example.invalid/simple'"),
        ("-f ./wheels\n", ":1: option '-f' is not followed"),
        ("attrs==1 \\\n    --hash=sha256:ab\n--no-binary :all:\n", ":3: option '--no-binary'"),
    ],
)  # fmt: skip
def test_a_planted_requirement_builds_nothing_and_is_one_line(
    tmp_path: Path, text: str, refused: str
) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran-on-the-host"
    package(repo / "evil", "evil", marker)
    (repo / "requirements.txt").write_text(text)
    with pytest.raises(EnvError) as caught:
        requirement_lines(repo / "requirements.txt")
    assert caught.value.message.startswith(f"{repo / 'requirements.txt'}{refused}")
    assert "\n" not in caught.value.message
    built, lines = build_through_prepare(repo, tmp_path)
    assert not marker.exists()
    assert built.kind == "path" and len(lines) == 1 and refused in lines[0], lines


def test_pip_compile_output_and_the_project_itself_still_read(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "-e .\n.[test]\n--pre\nattrs==23.1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via x\n"
        "six>=1 ; python_version >= '3' # why\nrequests[socks]~=2.31\n"
    )
    assert requirement_lines(tmp_path / "requirements.txt") == [
        "--pre",
        "attrs==23.1.0",
        "six>=1 ; python_version >= '3'",
        "requests[socks]~=2.31",
    ]


@pytest.mark.parametrize(
    ("lock", "refused"),
    [
        ('[[package]]\nname = "evil"\nversion = "1.0"\n[package.source]\ntype = "directory"\nurl = "evil"\n', "'evil' has source type 'directory'"),
        ('[[package]]\nname = "evil"\nversion = "1.0"\n[package.source]\ntype = "git"\nurl = "https://x/e.git"\n', "'evil' has source type 'git'"),
        ('[[package]]\nname = "evil"\nversion = "1.0"\npath = "./evil"\n', "'evil' has a path source"),
        ('[[package]]\nname = "--index-url=https://example.invalid/simple"\nversion = "1"\n', "is not a plain"),
    ],
)  # fmt: skip
def test_a_lock_with_a_local_or_git_package_is_refused(tmp_path: Path, lock: str, refused: str) -> None:
    (tmp_path / "poetry.lock").write_text(lock)
    with pytest.raises(EnvError, match=refused):
        lock_pins(tmp_path / "poetry.lock")


def test_pyproject_direct_references_are_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "p"\ndependencies = ["attrs", "evil @ file:./evil"]\n')
    with pytest.raises(EnvError, match=r"project.dependencies: 'evil @ file:./evil' is not a plain"):
        pyproject_requirements(pyproject)
    pyproject.write_text(
        '[tool.poetry.dependencies]\npython = "^3.9"\nevil = {path = "./evil", develop = true}\n'
    )
    with pytest.raises(EnvError, match=r"tool.poetry dependency 'evil': a path source"):
        pyproject_requirements(pyproject)


def uv_project(repo: Path, marker: Path, deps: str = "[]", sources: str = "") -> Path:
    package(repo, "uvp", marker, deps, sources)
    done = subprocess.run(
        [UV, "lock", "--offline", "--python", BASE_PYTHON], cwd=repo, capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"uv lock failed offline: {done.stderr.decode()[-200:]}")
    marker.unlink(missing_ok=True)  # only the build is under test, not the test's own lock
    return repo


@needs_uv
def test_a_uv_project_gets_its_env_and_its_build_backend_never_runs(tmp_path: Path) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran-on-the-host"
    uv_project(repo, marker)
    (repo / "uv.toml").write_text("no-build = false\nindex-url = 'http://127.0.0.1:9/simple'\n")  # ignored
    env = uv_sync(repo, tmp_path / "cache")
    assert (env / "bin" / "python").exists() and (env / "pyvenv.cfg").is_file()
    assert not list(env.glob("lib/python*/site-packages/*uvp*"))  # the project itself: not installed
    assert not marker.exists()


@needs_uv
@pytest.mark.parametrize("source", ["path", "git"])
def test_a_uv_lock_with_a_local_or_git_source_is_refused(tmp_path: Path, source: str) -> None:
    repo, marker = tmp_path / "repo", tmp_path / "ran-on-the-host"
    package(repo / "evil", "evil", marker)
    uv_project(repo, marker, '["evil"]', '[tool.uv.sources]\nevil = { path = "evil" }\n')
    if source == "git":
        lock = (repo / "uv.lock").read_text()
        (repo / "uv.lock").write_text(
            lock.replace('{ directory = "evil" }', '{ git = "https://example.invalid/e.git" }')
        )
    built, lines = build_through_prepare(repo, tmp_path)
    assert not marker.exists()
    kind = "directory 'evil'" if source == "path" else "git 'https://example.invalid/e.git'"
    assert built.kind == "path" and len(lines) == 1, lines
    assert f"uv.lock: package 'evil' comes from {kind}, not from an index" in lines[0]


def wheel(wheels: Path, name: str) -> None:
    wheels.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheels / f"{name}-1.0-py3-none-any.whl", "w") as z:
        z.writestr(f"{name}/__init__.py", "VALUE = 42\n")
        z.writestr(f"{name}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        z.writestr(
            f"{name}-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{name}-1.0.dist-info/RECORD", "")


def sdist(wheels: Path, name: str, marker: Path) -> None:
    """An sdist whose build (its setup.py, its backend) would leave `marker`."""
    src = package(wheels / f"{name}-1.0", name, marker)
    subprocess.run(["tar", "czf", f"{name}-1.0.tar.gz", src.name], cwd=wheels, check=True)


@needs_uv
def test_pinned_requirements_install_wheels_and_never_build_an_sdist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = subprocess.run(
        [UV, "venv", "-q", "--seed", "--offline", str(tmp_path / "probe")], capture_output=True
    )
    if seed.returncode != 0:
        pytest.skip("uv's cache has no pip/setuptools to seed a venv offline")
    wheels, marker = tmp_path / "wheels", tmp_path / "ran-on-the-host"
    wheel(wheels, "tinydep")
    sdist(wheels, "sdistonly", marker)
    monkeypatch.setenv("UV_FIND_LINKS", str(wheels))  # the user's own setting, not the repository's
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("tinydep==1.0\n")
    built, lines = build_through_prepare(repo, tmp_path)
    assert built.kind == "requirements" and lines == []
    assert list(built.venv.glob("lib/python*/site-packages/tinydep/__init__.py"))
    (repo / "requirements.txt").write_text("tinydep==1.0\nsdistonly==1.0\n")
    built, lines = build_through_prepare(repo, tmp_path)
    assert not marker.exists()
    assert built.kind == "path" and len(lines) == 1 and "sdistonly" in lines[0], lines
