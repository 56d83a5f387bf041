"""Cached environments built from what a repository declares: `uv sync` for a uv project, and a venv
built by the harness's EnvironmentManager (uv, hardened, cached by interpreter and pins) for poetry and
pdm locks, requirements files and pyproject.toml dependencies.

Everything here reads the *user's* repository (never the agent's workspace) and runs on the host. After
`devloop run --apply` that repository holds the model's patch, so nothing in it may run here: the project
and its workspace members are never installed (the tests import the workspace's copy), only wheels are
installed (building an sdist, a local directory or a git checkout would run its build backend), direct
references (local paths, URLs, VCS checkouts, editables) and index or find-links overrides are refused with
one line naming the file and entry, and uv reads no configuration file (a `uv.toml` or `[tool.uv]` there
could point it at another index or turn builds back on). The built env's python is not run here either:
detect reads its pyvenv.cfg.
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


# What a requirement may be: a name, extras, version specifiers, then markers after `;`. Anything else
# (`name @ url`, a path, an archive, a VCS URL) is a direct reference, whose install could build it.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PLAIN = re.compile(
    rf"{_NAME}\s*(?:\[\s*(?:{_NAME}\s*(?:,\s*{_NAME}\s*)*)?\])?\s*\(?[\s<>=!~*.,A-Za-z0-9+]*\)?"
)
# uv and pip both take this: wheels only, so no package's build backend runs while installing.
WHEELS_ONLY = ["--only-binary", ":all:"]


def plain_requirement(req: str, where: str) -> str:
    """`req` if it names a package by name and version only; else EnvError naming `where` and it."""
    head = req.split(";", 1)[0].strip()
    if not _PLAIN.fullmatch(head):
        raise EnvError(
            f"{where}: {req.strip()!r} is not a plain `name==version` requirement (a direct reference, "
            "path or URL would be built or fetched from your repository on this host); refused"
        )
    return req.strip()


def uv_sync(repo: Path, cache_dir: Path | None = None) -> Path:
    """`uv sync --frozen` of the uv project at `repo` into a cached env keyed by its lock (and path).
    Only the locked dependencies are installed, as wheels from an index: not the project or its
    workspace members (`--no-install-workspace`), nothing built (`--no-build`), no uv.toml or
    `[tool.uv]` settings (`--no-config`); uv.lock is checked first (uv_lock_sources). Raises EnvError
    with uv's last line."""
    from devloop.eval.envs import find_uv, harden  # the eval harness's code, loaded when building

    uv = find_uv()
    if uv is None:
        raise EnvError("uv is not installed (pip install uv)")
    uv_lock_sources(repo / "uv.lock")
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
            for name in ("UV_CONFIG_FILE", "UV_NO_BUILD_ISOLATION", "UV_NO_BINARY"):
                env.pop(name, None)
            argv = [uv, "sync", "--frozen", "--no-install-workspace", "--no-build", "--no-config"]
            _run([*argv, "--compile-bytecode", "--project", str(repo)], repo, env)
            harden(final)
            (final / _DONE).write_text("uv sync\n")
    return final


def uv_lock_sources(lock: Path) -> None:
    """Refuse a uv.lock with a package uv would take from your repository or fetch by URL rather than
    from an index: a path, directory, URL or git source, an editable or virtual package that is not a
    workspace member (members are never installed), or a registry that is not an http(s) index (a
    local find-links directory). EnvError names the lock, the package and its source."""
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EnvError(f"cannot read {lock}: {e}") from None
    manifest = data.get("manifest", {})
    members = set(manifest.get("members", [])) if isinstance(manifest, dict) else set()
    for package in data.get("package", []):
        if not isinstance(package, dict):
            continue
        name, source = package.get("name"), package.get("source")
        if not isinstance(source, dict):
            continue
        kind, value = next(iter(source.items()), ("", ""))
        if kind == "registry" and isinstance(value, str) and value.startswith(("https://", "http://")):
            continue
        if kind in ("editable", "virtual") and (value == "." or name in members):
            continue
        raise EnvError(
            f"{lock}: package {name!r} comes from {kind} {value!r}, not from an index; only index "
            "wheels are installed on this host (a local or git source would run its build backend), refused"
        )


def lock_pins(lock: Path) -> list[str]:
    """`name==version` (with its markers) for every package in a poetry.lock or pdm.lock. A package
    from a directory, file, URL or git source (its `source.type` in poetry, `path` / `url` / `git` /
    `editable` in pdm) is refused: installing it would build it from what your repository holds."""
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EnvError(f"cannot read {lock}: {e}") from None
    pins: list[str] = []
    for package in data.get("package", []):
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        if not (isinstance(name, str) and isinstance(version, str)):
            continue
        source = package.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        direct = [key for key in ("path", "url", "git", "editable") if package.get(key)]
        if kind not in (None, "legacy") or direct:
            what = f"source type {kind!r}" if kind not in (None, "legacy") else f"a {direct[0]} source"
            raise EnvError(
                f"{lock}: package {name!r} has {what}, not an index release; only index wheels are "
                "installed on this host, refused"
            )
        marker = package.get("markers") if isinstance(package.get("markers"), str) else None
        pin = f"{name}=={version}" + (f" ; {marker}" if marker else "")
        pins.append(plain_requirement(pin, f"{lock}: package {name!r}"))
    return pins


# Options a requirements file may carry that change nothing about where packages come from.
_HARMLESS = ("--pre", "--prefer-binary")


def requirement_lines(path: Path, seen: set[Path] | None = None) -> list[str]:
    """The requirements in a requirements file, following `-r` / `-c` includes; the project itself
    (`-e .`, `.`) is left out: the tests import the workspace's copy. Lines joined by a trailing `\\`
    are one line and their `--hash` options are dropped (pip-compile's output). Refused, with
    EnvError naming the file, line and entry: other editables, direct references (`name @ url`, paths,
    archives, VCS URLs) and options other than `--pre` / `--prefer-binary` (an `--index-url`,
    `--extra-index-url` or `--find-links` from your repository would choose where packages come from)."""
    seen = seen if seen is not None else set()
    if path.resolve() in seen or not path.is_file():
        return []
    seen.add(path.resolve())
    out: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise EnvError(f"cannot read {path}: {e.strerror}") from None
    number, pending = 0, ""
    for index, raw in enumerate(text.splitlines(), 1):
        number = number or index
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = (pending + line).strip(), ""
        where, number = f"{path}:{number}", 0
        line = re.sub(r"\s--hash[=\s]\S+", "", f" {line}").strip()
        if not line:
            continue
        flag, _, rest = line.partition(" ")
        if flag in ("-r", "--requirement", "-c", "--constraint"):
            out += requirement_lines(path.parent / rest.strip(), seen)
        elif re.fullmatch(r"(?:(?:-e|--editable)\s+)?\.(?:/)?(?:\[[^\]]*\])?", line):
            continue
        elif flag in ("-e", "--editable"):
            raise EnvError(
                f"{where}: {line!r} is an editable install, which would build it on this host; refused"
            )
        elif line.startswith("-"):
            if line not in _HARMLESS:
                raise EnvError(
                    f"{where}: option {flag!r} is not followed from a requirements file (an index, "
                    "find-links or build option there would choose what runs on this host); refused"
                )
            out.append(line)
        else:
            out.append(plain_requirement(line, where))
    return out


def pyproject_requirements(pyproject: Path) -> list[str]:
    """A pyproject.toml's dependencies and its test/dev extras and dependency groups (PEP 621, 735), or
    its [tool.poetry] dependencies (lower bounds from ^ and ~ constraints)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EnvError(f"cannot read {pyproject}: {e}") from None
    project = data.get("project", {})
    out = [
        plain_requirement(d, f"{pyproject}: project.dependencies")
        for d in project.get("dependencies", [])
        if isinstance(d, str)
    ]
    for group in _TEST_GROUPS:
        where = f"{pyproject}: project.optional-dependencies.{group}"
        out += [
            plain_requirement(d, where)
            for d in project.get("optional-dependencies", {}).get(group, [])
            if isinstance(d, str)
        ]
        where = f"{pyproject}: dependency-groups.{group}"
        out += [
            plain_requirement(d, where)
            for d in data.get("dependency-groups", {}).get(group, [])
            if isinstance(d, str)
        ]
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values() if isinstance(g, dict)]
    for table in tables:
        for name, spec in table.items():
            if name.lower() == "python":
                continue
            where = f"{pyproject}: tool.poetry dependency {name!r}"
            if isinstance(spec, dict) and (
                direct := [k for k in ("path", "git", "url", "file") if k in spec]
            ):
                raise EnvError(
                    f"{where}: a {direct[0]} source, which would be built from your repository or fetched "
                    "by URL on this host; refused"
                )
            version = (
                spec if isinstance(spec, str) else spec.get("version", "*") if isinstance(spec, dict) else "*"
            )
            out.append(plain_requirement(name + _poetry_constraint(version), where))
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
        # No uv configuration file (the command runs where devloop was started, often the repository
        # itself, whose uv.toml could name another index for the seed packages or undo wheels-only).
        manager = envs.EnvironmentManager(cache_root(cache_dir), no_config=True)
        return manager.venv_for(EnvironmentSpec(python=python_version, pip=[*WHEELS_ONLY, *pins]))
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
        errors = [line.strip() for line in tail if line.startswith("error:")]  # not a trailing `hint:`
        last = errors[-1] if errors else tail[-1].strip() if tail else f"exit {proc.returncode}"
        raise EnvError(f"`uv {argv[1]}` failed: {last}")


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
