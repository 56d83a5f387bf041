"""`devloop run` gives the agent the repository's own environment, as a user expects: the repo's
gitignored .venv (not in the workspace), --python / --venv, a cached env for a uv project or a
requirements file, and else the interpreter on PATH with its shim resolved; the first line says which
and why, result.json records it, and it works in the bwrap sandbox and without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devloop.repoenv import EnvChoiceError, choose_environment
from devloop.runtime.bwrap import probe_bwrap

Kit = Any  # the `kit` fixture (tests/cli/conftest.py)
TEST_V = "import tinydep\n\n\ndef test_value():\n    assert tinydep.VALUE == 42\n"


NO_BWRAP = probe_bwrap()
NEEDS_BWRAP = pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap: {NO_BWRAP}")


def sandboxes() -> list[Any]:
    """`auto` (bwrap here, when it works) and `none`."""
    return [pytest.param("auto", marks=NEEDS_BWRAP), "none"]


pytestmark = pytest.mark.slow

PROBE = (
    "python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -1; "
    "python -c 'import sys, tinydep; print(\"dep\", tinydep.VALUE, sys.prefix)'"
)
REAL_PYTHON = Path(sys._base_executable).resolve()  # devloop's venv's base: a real binary


@pytest.mark.parametrize("sandbox", sandboxes())
def test_the_repos_gitignored_venv_runs_the_tests(kit: Kit, sandbox: str) -> None:
    repo = kit.repo({"tests/test_v.py": TEST_V})
    venv = kit.venv(repo / ".venv")
    new_test = "import tinydep\n\n\ndef test_more():\n    assert tinydep.VALUE > 0\n"
    run = kit.run(
        repo,
        [
            ("execute_bash", {"command": PROBE}),
            (
                "str_replace_editor",
                {"command": "create", "path": "tests/test_more.py", "file_text": new_test},
            ),
        ],
        "--sandbox",
        sandbox,
        "--hook",
        "pytest",
    )
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert run.first_line.endswith(f"env: {venv} (the repo's .venv)"), run.first_line
    seen = run.observations()[0]
    assert "1 passed" in seen and f"dep 42 {venv}" in seen, seen
    result = run.result
    assert result["environment"]["kind"] == "repo_venv"
    assert result["environment"]["python"] == str(venv / "bin" / "python")
    assert result["environment"]["reason"] == "the repo's .venv"
    # the test hook ran the same interpreter: the new test passed, with the dependency imported
    assert result["test_status"] == "green" and result["hook_error"] is None, result
    assert "tests: green" in run.proc.stdout


@pytest.mark.parametrize(
    ("sandbox", "flag"), [pytest.param("auto", "--python", marks=NEEDS_BWRAP), ("none", "--venv")]
)
def test_an_explicit_python_or_venv_wins(kit: Kit, sandbox: str, flag: str) -> None:
    repo = kit.repo({"tests/test_v.py": TEST_V})
    elsewhere = kit.venv(kit.tmp / "envs" / "mine")
    kit.venv(repo / ".venv", pytest_too=False, tinydep=False)  # detected otherwise: the flag wins
    value = str(elsewhere / "bin" / "python") if flag == "--python" else str(elsewhere)
    run = kit.run(repo, [("execute_bash", {"command": PROBE})], "--sandbox", sandbox, flag, value)
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    why = "--python, a venv's interpreter" if flag == "--python" else "--venv"
    assert run.first_line.endswith(f"env: {elsewhere} ({why})"), run.first_line
    assert f"dep 42 {elsewhere}" in run.observations()[0]
    assert run.result["environment"]["kind"] == flag.lstrip("-")


def test_a_bad_python_is_one_line_and_exit_2(kit: Kit) -> None:
    repo = kit.repo({"a.py": "x = 1\n"})
    run = kit.run(repo, [], "--python", str(kit.tmp / "nope" / "python"))
    assert run.proc.returncode == 2
    assert f"--python {kit.tmp / 'nope' / 'python'}: does not run as a Python interpreter" in run.proc.stderr
    assert "Traceback" not in run.proc.stderr


@pytest.mark.parametrize("sandbox", sandboxes())
def test_no_repo_env_falls_back_to_path_and_resolves_a_shim(kit: Kit, sandbox: str) -> None:
    """A shim (like pyenv's: a script that execs the real interpreter) first on PATH: the sandbox gets the
    real binary, and the first line says there was no repository environment."""
    repo = kit.repo({"a.py": "x = 1\n"})
    shims = kit.tmp / "shims-like"
    shims.mkdir()
    shim = shims / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{REAL_PYTHON}" "$@"\n')
    shim.chmod(0o755)
    probe = (
        "command -v python; python -c 'import os, sys; print(os.path.realpath(sys.executable), sys.prefix)'"
    )
    env = {"PATH": f"{shims}:/usr/local/bin:/usr/bin:/bin"}
    run = kit.run(repo, [("execute_bash", {"command": probe})], "--sandbox", sandbox, env=env)
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert "no repo environment found; the python3 on PATH" in run.first_line, run.first_line
    assert f"{shim} resolved to " in run.first_line
    seen = run.observations()[0]
    where, real = seen.splitlines()[:2]
    assert where.startswith(str(kit.cache / "devloop")) and where.endswith("/bin/python"), seen
    assert real.split()[0] == str(REAL_PYTHON), seen
    assert run.result["environment"]["kind"] == "path"
    assert run.result["environment"]["python"] == str(REAL_PYTHON)


@pytest.mark.parametrize("sandbox", sandboxes())
def test_a_uv_project_is_synced_into_a_cached_env(kit: Kit, sandbox: str) -> None:
    pyproject = '[project]\nname = "uvp"\nversion = "0.1"\nrequires-python = ">=3.8"\ndependencies = []\n'
    repo = kit.repo({"pyproject.toml": pyproject})
    if kit.uv is None:
        pytest.skip("uv is not installed")
    lock = subprocess.run(
        [kit.uv, "lock", "--offline", "--python", sys.executable], cwd=repo, capture_output=True, check=False
    )
    if lock.returncode != 0:
        pytest.skip(f"uv lock failed offline: {lock.stderr.decode()[-200:]}")
    probe = "python -c 'import sys; print(sys.prefix)'"
    run = kit.run(repo, [("execute_bash", {"command": probe})], "--sandbox", sandbox, env={"UV_OFFLINE": "1"})
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert run.first_line.endswith("env: a uv project: uv sync of uv.lock (cached env, built before the run)")
    built = run.result["environment"]["venv"]
    assert built.startswith(str(kit.cache / "devloop" / "envs" / "repo-envs" / "uv-")), run.result
    assert f"env: {built} (a uv project" in run.proc.stdout.splitlines()[1]
    assert run.observations()[0].splitlines()[0] == built
    if sandbox == "none":  # once is enough: the same lock finds the cached env, not a new one
        again = kit.run(
            repo, [("execute_bash", {"command": probe})], "--sandbox", "none", env={"UV_OFFLINE": "1"}
        )
        assert again.result["environment"]["venv"] == built


def test_requirements_build_a_cached_env_with_uv(kit: Kit) -> None:
    repo = kit.repo(
        {"requirements.txt": "pytest  # the tests\n", "tests/test_ok.py": "def test_ok():\n    pass\n"}
    )
    kit.venv(kit.tmp / "probe-venv", tinydep=False)  # skips unless pytest can be installed here
    probe = "python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -1"
    run = kit.run(repo, [("execute_bash", {"command": probe})], "--sandbox", "none")
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert "env: requirements.txt installed with uv (cached env" in run.first_line
    env = run.result["environment"]
    assert env["kind"] == "requirements" and env["venv"].startswith(
        str(kit.cache / "devloop" / "envs" / "venvs")
    )
    assert "1 passed" in run.observations()[0]


@pytest.mark.parametrize("sandbox", [pytest.param("auto", marks=NEEDS_BWRAP)])
def test_the_repos_node_modules_are_reachable(kit: Kit, sandbox: str) -> None:
    """node_modules is gitignored, so not in the workspace: its .bin goes on PATH and it is NODE_PATH."""
    repo = kit.repo({"package.json": '{"name": "p", "version": "1.0.0"}\n'})
    tool = repo / "node_modules" / ".bin" / "hello-tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho hello from node_modules\n")
    tool.chmod(0o755)
    run = kit.run(repo, [("execute_bash", {"command": "hello-tool; echo $NODE_PATH"})], "--sandbox", sandbox)
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert f"node_modules: {repo / 'node_modules'} (on PATH and NODE_PATH)" in run.first_line
    seen = run.observations()[0]
    assert "hello from node_modules" in seen and str(repo / "node_modules") in seen, seen
    assert run.result["environment"]["node_modules"] == str(repo / "node_modules")


def test_docker_keeps_the_images_python_and_refuses_python_flags(tmp_path: Path) -> None:
    chosen = choose_environment(tmp_path, sandbox="docker")
    assert chosen.kind == "image" and chosen.variables(tmp_path) == {}
    with pytest.raises(EnvChoiceError, match="--python / --venv need --sandbox bwrap or none"):
        choose_environment(tmp_path, sandbox="docker", python=Path(sys.executable))


def test_devloops_own_venv_is_never_the_repos(tmp_path: Path) -> None:
    """Run from its own activated venv, devloop does not hand that venv to the repository."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("devloop is not running from a venv")
    environ = {**os.environ, "VIRTUAL_ENV": sys.prefix, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"}
    chosen = choose_environment(tmp_path, environ=environ, cache_dir=tmp_path / "cache")
    # The python3 on PATH may lie in some other venv (then that venv is named); never in devloop's own.
    assert chosen.kind == "path" and chosen.venv != Path(sys.prefix)
    assert Path(sys.prefix) not in chosen.python.parents
