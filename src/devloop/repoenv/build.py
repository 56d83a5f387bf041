"""Cached environments built from what a repository declares: `uv sync` for a uv project, and a venv
built by the harness's EnvironmentManager (uv, hardened, cached by interpreter and pins) for poetry and
pdm locks, requirements files and pyproject.toml dependencies.

Everything here reads the *user's* repository (never the agent's workspace) and runs on the host.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from devloop.repoenv.model import cache_root

_DONE = ".devloop-repo-env"


class EnvError(Exception):
    """An environment could not be built; `message` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Optional-dependency extras and dependency groups that hold what a project's tests need.
_TEST_GROUPS = ("test", "tests", "testing", "dev")
_BUILD_TIMEOUT = 900


def uv_sync(repo: Path, cache_dir: Path | None = None) -> Path:
    """`uv sync --frozen` of the uv project at `repo` into a cached env keyed by its lock (and path:
    the project's own editable install names it). Raises EnvError with uv's last line."""
    from devloop.eval.envs import find_uv, harden  # the eval harness's code, loaded when building

    uv = find_uv()
    if uv is None:
        raise EnvError("uv is not installed (pip install uv)")
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml", ".python-version"):
        if (repo / name).is_file():
            digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
    digest.update(str(repo.resolve()).encode())
    final = cache_root(cache_dir) / "repo-envs" / f"uv-{digest.hexdigest()[:16]}"
    with _locked(final):
        if not (final / _DONE).is_file():
            shutil.rmtree(final, ignore_errors=True)  # a killed build: start again
            env = {
                k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
            }
            env["UV_PROJECT_ENVIRONMENT"] = str(final)
            _run([uv, "sync", "--frozen", "--compile-bytecode", "--project", str(repo)], repo, env)
            harden(final)
            (final / _DONE).write_text("uv sync\n")
    return final


def lock_pins(lock: Path) -> list[str]:
    """`name==version` (with its markers) for every package in a poetry.lock or pdm.lock."""
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EnvError(f"cannot read {lock}: {e}") from None
    pins: list[str] = []
    for package in data.get("package", []):
        name, version = package.get("name"), package.get("version")
        if not (isinstance(name, str) and isinstance(version, str)):
            continue
        marker = package.get("markers") if isinstance(package.get("markers"), str) else None
        pins.append(f"{name}=={version}" + (f" ; {marker}" if marker else ""))
    return pins


def requirement_lines(path: Path, seen: set[Path] | None = None) -> list[str]:
    """The requirements in a requirements file, following `-r` / `-c` includes; the project itself
    (`-e .`, `.`) is left out: the tests import the workspace's copy."""
    seen = seen if seen is not None else set()
    if path.resolve() in seen or not path.is_file():
        return []
    seen.add(path.resolve())
    out: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise EnvError(f"cannot read {path}: {e.strerror}") from None
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        flag, _, rest = line.partition(" ")
        if flag in ("-r", "--requirement", "-c", "--constraint"):
            out += requirement_lines(path.parent / rest.strip(), seen)
        elif flag in ("-e", "--editable") or line in (".", "./"):
            continue
        elif line.startswith("-"):
            out += [flag, rest.strip()] if rest.strip() else [flag]
        else:
            out.append(line)
    return out


def pyproject_requirements(pyproject: Path) -> list[str]:
    """A pyproject.toml's dependencies and its test/dev extras and dependency groups (PEP 621, 735), or
    its [tool.poetry] dependencies (lower bounds from ^ and ~ constraints)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EnvError(f"cannot read {pyproject}: {e}") from None
    project = data.get("project", {})
    out = [d for d in project.get("dependencies", []) if isinstance(d, str)]
    for group in _TEST_GROUPS:
        out += [d for d in project.get("optional-dependencies", {}).get(group, []) if isinstance(d, str)]
        out += [d for d in data.get("dependency-groups", {}).get(group, []) if isinstance(d, str)]
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values() if isinstance(g, dict)]
    for table in tables:
        for name, spec in table.items():
            if name.lower() == "python":
                continue
            version = (
                spec if isinstance(spec, str) else spec.get("version", "*") if isinstance(spec, dict) else "*"
            )
            out.append(name + _poetry_constraint(version))
    return list(dict.fromkeys(out))


def _poetry_constraint(version: str) -> str:
    version = version.strip()
    if version in ("", "*"):
        return ""
    if version[0] in "^~":
        return ">=" + version.lstrip("^~=")
    return version if version[0] in "<>=!" else "==" + version


def managed_venv(python_version: str, pins: list[str], cache_dir: Path | None = None) -> Path:
    """The harness's cached venv for `pins` on Python `python_version`. Raises EnvError."""
    from devloop.eval import envs
    from devloop.tasks.model import EnvironmentSpec

    try:
        return envs.EnvironmentManager(cache_root(cache_dir)).venv_for(
            EnvironmentSpec(python=python_version, pip=pins)
        )
    except envs.EnvError as e:
        raise EnvError(e.message) from None


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=_BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise EnvError(f"`{' '.join(argv[:2])}` did not finish in {_BUILD_TIMEOUT} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise EnvError(f"`uv {argv[1]}` failed: {tail[-1] if tail else f'exit {proc.returncode}'}")


class _locked:
    """One builder per environment, across processes."""

    def __init__(self, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self.path = final.with_name(f".{final.name}.lock")

    def __enter__(self) -> None:
        self.fh = open(self.path, "w")  # noqa: SIM115 - held for the block
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
