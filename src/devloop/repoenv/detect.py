"""Which environment a `devloop run` gives the agent, in order: --python / --venv; an active VIRTUAL_ENV
(not devloop's own); the repository's .venv or venv; a uv project (uv.lock: `uv sync` into a cached
env); a poetry or pdm lock; requirements*.txt; pyproject.toml dependencies (cached envs built with uv);
else the interpreter on PATH, resolved through shims to the real binary.

Choosing is cheap; a cached build waits for `prepare`, so the run's first line can name it first.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from devloop.repoenv.model import (
    EnvChoiceError,
    Interpreter,
    RepoEnvironment,
    cache_root,
    devloop_prefix,
    prefix_parts,
    probe,
    read_venv,
)


def choose_environment(
    repo: Path,
    *,
    python: Path | None = None,
    venv: Path | None = None,
    sandbox: str = "auto",
    environ: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> RepoEnvironment:
    """The environment for a run on the user's `repo` (see the module docstring). Raises
    EnvChoiceError for a --python / --venv that is not a usable interpreter."""
    environ = dict(os.environ if environ is None else environ)
    repo = Path(repo).absolute()
    if sandbox == "docker":
        if python or venv:
            raise EnvChoiceError(
                "--python / --venv need --sandbox bwrap or none: a docker sandbox runs its image's Python"
            )
        return RepoEnvironment("image", "the docker image's own Python; host environments are not mounted")
    found = _explicit(repo, python, venv, cache_dir) or _detected(repo, environ, cache_dir)
    modules = repo / "node_modules"
    if (repo / "package.json").is_file() and modules.is_dir():
        found.node_modules = modules
        found.mounts.append(modules)
    return found


def prepare(env: RepoEnvironment, repo: Path, *, on_line: Callable[[str], None] = print) -> RepoEnvironment:
    """Build the cached environment `env` still waits for, if any; when that fails, say why and fall
    back to the interpreter on PATH."""
    if env.pending is None:
        return env
    from devloop.repoenv.build import EnvError

    kind, reason, make = env.pending
    try:
        venv = make()
    except EnvError as e:
        fallback = _on_path(Path(repo).absolute(), dict(os.environ), None)
        on_line(f"env: {reason}: building it failed ({e.message}); using {fallback.python} instead")
        fallback.reason = f"{fallback.reason}; building from the {kind} project failed"
        fallback.node_modules, fallback.mounts = env.node_modules, [*fallback.mounts, *env.mounts]
        return fallback
    # Read, not run: what was installed (a wheel's .pth file) would run with its python on this host.
    built = _from_venv(venv, kind, reason, Path(repo).absolute(), cache_dir=None, run=False)
    if built is None:
        raise EnvChoiceError(f"the environment built for {repo} at {venv} has no working python")
    built.node_modules, built.mounts = env.node_modules, [*built.mounts, *env.mounts]
    src = Path(repo).absolute() / "src"
    if not built.remaps and any(src.glob("*/__init__.py")):
        built.remaps.append("src")  # the project itself is not installed: a src layout imports from here
    return built


def _explicit(
    repo: Path, python: Path | None, venv: Path | None, cache_dir: Path | None
) -> RepoEnvironment | None:
    if python is not None and venv is not None:
        raise EnvChoiceError("give one of --python or --venv, not both")
    if venv is not None:
        found = _from_venv(Path(venv).absolute(), "venv", "--venv", repo, cache_dir)
        if found is None:
            raise EnvChoiceError(f"--venv {venv}: not a virtual environment with a working bin/python")
        return found
    if python is not None:
        interp = probe(python)
        if interp is None:
            raise EnvChoiceError(f"--python {python}: does not run as a Python interpreter")
        if interp.venv is not None:
            return _from_venv(interp.venv, "python", "--python, a venv's interpreter", repo, cache_dir)
        return _plain(interp, "python", _shim_note(Path(python), interp, "--python"), cache_dir)
    return None


def _detected(repo: Path, environ: dict[str, str], cache_dir: Path | None) -> RepoEnvironment:
    from devloop.repoenv import build

    active = environ.get("VIRTUAL_ENV")
    own = devloop_prefix()
    theirs = (
        active and Path(active).is_absolute() and (own is None or Path(active).resolve() != own.resolve())
    )
    tops = _up_to_git_top(repo)
    if theirs and (
        found := _from_venv(
            Path(active),
            "virtual_env",
            "the active VIRTUAL_ENV",
            repo,
            cache_dir,
            run=not any(Path(active).absolute().is_relative_to(top) for top in tops),
        )
    ):
        return found
    for top in tops:  # a package inside a larger repository: its venv may sit at the top
        for name in (".venv", "venv"):
            here = top / name
            why = f"the repo's {name}" if top == repo else f"the {name} of {top}"
            # In the user's tree, which an applied patch may have written: read, never run on the host.
            if (here / "pyvenv.cfg").is_file() and (
                found := _from_venv(here, "repo_venv", why, repo, cache_dir, run=False)
            ):
                return found
    version = _wanted_version(repo, environ)
    if (repo / "uv.lock").is_file():
        return _pending("uv", "a uv project: uv sync of uv.lock", lambda: build.uv_sync(repo, cache_dir))
    for kind, lock in (("poetry", "poetry.lock"), ("pdm", "pdm.lock")):
        if (repo / lock).is_file():
            return _pending(
                kind,
                f"a {kind} project: {lock} installed with uv",
                lambda lock=lock: build.managed_venv(version(), build.lock_pins(repo / lock), cache_dir),
            )
    # A refused or unreadable file is still the environment the repository declares: its one-line
    # reason is said when the build is due (prepare), rather than silently trying the next kind.
    requirements = sorted(repo.glob("requirements*.txt"))
    if requirements:
        names = ", ".join(f.name for f in requirements)
        return _pending(
            "requirements",
            f"{names} installed with uv",
            lambda: build.managed_venv(
                version(), [line for f in requirements for line in build.requirement_lines(f)], cache_dir
            ),
        )
    if (repo / "pyproject.toml").is_file():
        try:
            pins = build.pyproject_requirements(repo / "pyproject.toml")
        except build.EnvError as e:
            refused = e
            return _pending(
                "pyproject", "pyproject.toml's dependencies installed with uv", lambda: _raise(refused)
            )
        if pins:
            return _pending(
                "pyproject",
                "pyproject.toml's dependencies installed with uv",
                lambda: build.managed_venv(version(), pins, cache_dir),
            )
    return _on_path(repo, environ, cache_dir)


def _raise(error: Exception) -> Path:
    raise error


def _up_to_git_top(repo: Path) -> list[Path]:
    """`repo`, then its parents up to the top of the git repository holding it (just `repo` outside one)."""
    out: list[Path] = []
    for parent in [repo, *repo.parents]:
        out.append(parent)
        if (parent / ".git").exists():
            return out
    return [repo]


def _pending(kind: str, reason: str, make: Callable[[], Path]) -> RepoEnvironment:
    return RepoEnvironment(kind, reason + " (cached env, built before the run)", pending=(kind, reason, make))


def _wanted_version(repo: Path, environ: dict[str, str]) -> Callable[[], str]:
    """The Python version to build with: .python-version, else the interpreter on PATH's X.Y."""

    def version() -> str:
        pinned = repo / ".python-version"
        if pinned.is_file():
            text = pinned.read_text(encoding="utf-8", errors="replace").split()
            if text and re.fullmatch(r"\d+\.\d+(\.\d+)?", text[0]):
                return text[0]
        found = _on_path(repo, environ, None)
        if found.version is None:
            from devloop.repoenv.build import EnvError

            raise EnvError("no Python interpreter on PATH to build the environment with")
        return ".".join(found.version.split(".")[:2])

    return version


def _on_path(repo: Path, environ: dict[str, str], cache_dir: Path | None) -> RepoEnvironment:
    """The first python3 (or python) on PATH, devloop's own venv left out; a shim (pyenv, asdf, a
    wrapper script) is run once and replaced by the binary it runs."""
    own = devloop_prefix()
    tops = _up_to_git_top(repo)
    entries = [
        e
        for e in environ.get("PATH", "").split(os.pathsep)
        if e
        and Path(e).is_absolute()
        and not (own is not None and Path(e) in (own / "bin", own.resolve() / "bin"))
        and not any(Path(e).is_relative_to(top) for top in tops)  # the user's tree: never run on the host
    ]
    for name in ("python3", "python"):
        exe = shutil.which(name, path=os.pathsep.join(entries))
        interp = probe(exe) if exe else None
        if exe is None or interp is None:
            continue
        reason = _shim_note(Path(exe), interp, f"no repo environment found; the {name} on PATH")
        if interp.venv is not None and (found := _from_venv(interp.venv, "path", reason, repo, cache_dir)):
            return found
        return _plain(interp, "path", reason, cache_dir)
    return RepoEnvironment("none", "no Python interpreter found on PATH")


def _shim_note(given: Path, interp: Interpreter, what: str) -> str:
    real = interp.executable.resolve()
    if given.absolute().resolve() == real:
        return what
    return f"{what}, {given} resolved to {interp.executable}"


def _from_venv(
    venv: Path, kind: str, reason: str, repo: Path, cache_dir: Path | None, *, run: bool = True
) -> RepoEnvironment | None:
    """The environment of the venv at `venv`; `run`: ask its python (one the user named, or made outside
    the repository), else read its pyvenv.cfg (one in the user's tree: see read_venv)."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    interp = probe(python) if run else read_venv(venv)
    if interp is None:
        return None
    mounts = [venv, *prefix_parts(interp.base_prefix), *_base_links(venv)]
    return RepoEnvironment(
        kind,
        reason,
        python=python,
        venv=venv,
        bin_dir=venv / "bin",
        mounts=mounts,
        remaps=_editable_remaps(venv, repo),
        version=interp.version,
    )


def _base_links(venv: Path) -> list[Path]:
    """The prefixes bin/python's chain of links passes through (uv links via a `python3.X` alias)."""
    out: list[Path] = []
    for python in sorted((venv / "bin").glob("python*")):
        real = python.resolve()
        if real.exists() and real.parent.parent != venv.resolve():
            out += prefix_parts(real.parent.parent)
    return out


def _plain(interp: Interpreter, kind: str, reason: str, cache_dir: Path | None) -> RepoEnvironment:
    """A non-venv interpreter: a small directory of links to it goes first on PATH, so `python` and
    `python3` both name it (a shim directory would call a version manager the sandbox hides)."""
    real = interp.executable.resolve()
    tag = hashlib.sha256(str(real).encode()).hexdigest()[:16]
    links = cache_root(cache_dir) / "interpreters" / tag / "bin"
    if not links.is_dir():
        staging = links.parent.with_name(f".{tag}-{os.getpid()}") / "bin"
        staging.mkdir(parents=True, exist_ok=True)
        major_minor = ".".join(interp.version.split(".")[:2])
        for name in ("python", "python3", f"python{major_minor}"):
            (staging / name).symlink_to(real)
        try:
            os.rename(staging.parent, links.parent)
        except OSError:  # another run made it first
            shutil.rmtree(staging.parent, ignore_errors=True)
    return RepoEnvironment(
        kind,
        reason,
        python=real,
        bin_dir=links,
        mounts=[links.parent, *prefix_parts(interp.base_prefix), *prefix_parts(real.parent.parent)],
        version=interp.version,
    )


def _editable_remaps(venv: Path, repo: Path) -> list[str]:
    """Directories of `repo` that the venv's editable installs put on sys.path (.pth lines, setuptools'
    finder MAPPING), relative to the repository: the run puts the workspace's copies first."""
    top = repo.resolve()
    found: list[Path] = []
    for site in venv.glob("lib/python*/site-packages"):
        for pth in site.glob("*.pth"):
            for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip() and not line.startswith(("import ", "#")):
                    found.append(Path(line.strip()))
        for finder in site.glob("__editable___*finder.py"):
            match = re.search(
                r"^MAPPING\s*(?::[^=]*)?=\s*(\{.*?\})\s*$", finder.read_text(errors="replace"), re.M | re.S
            )
            try:
                mapping = ast.literal_eval(match.group(1)) if match else {}
            except (ValueError, SyntaxError):
                mapping = {}
            found += [Path(p).parent for p in mapping.values() if isinstance(p, str)]
    out: list[str] = []
    for path in found:
        try:
            rel = path.resolve().relative_to(top).as_posix()
        except (ValueError, OSError):
            continue
        if rel not in out:
            out.append(rel)
    return out
