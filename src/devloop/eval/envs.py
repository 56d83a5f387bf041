"""Virtual environments for grading: one per (python, pip pins), built once, cached, cloned per instance.

The cached venv is never modified after its build: each instance gets a clone (its `bin/` scripts
rewritten to the clone's path), so the per-instance install command (typically `pip install -e .`)
cannot leak one instance's tree into another's, even with parallel workers on the same environment.

A clone is hard links (cheap) unless it is `private`: a sandbox that runs as the files' owner could
write a cached file through a link, so it gets a real copy (reflinked where the filesystem can). A
sandbox demoted from root gets the links, with only the directories handed to it (see taskbox.py): it
may add and replace files, but every cached file stays root's and read-only to it. Cached files are
never group- or other-writable (`harden`), so that holds for any uid.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import platformdirs

from devloop.tasks.model import EnvironmentSpec

_COMPLETE = ".devloop-env.json"


class EnvError(Exception):
    """An environment could not be provided. `log` holds the build output, if any."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.message = message
        self.log = log


class PythonNotFound(EnvError):
    """No interpreter of the requested version on PATH, under $PYENV_ROOT/versions, or known to uv."""


class EnvBuildError(EnvError):
    """Creating the venv or installing its pins failed."""


# 2: byte-compiled installs. pip compiles by default (and so do the official SWE-bench images) but uv does
# not, and compiling at first import instead surfaces SyntaxWarnings, which `-W error` test configurations
# turn into import errors (seen on pallets__flask-4045 with blinker 1.4).
BUILD_VERSION = 2


def find_uv() -> str | None:
    """uv on PATH, else the binary of the `uv` Python package (a devloop dependency), else None."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return find_uv_bin()
    except FileNotFoundError:
        return None


def default_cache_dir() -> Path:
    """Where environments live unless told otherwise: the user cache dir, `devloop/envs`."""
    return Path(platformdirs.user_cache_dir("devloop")) / "envs"


def _probe(executable: str) -> tuple[str, str] | None:
    """(version "X.Y.Z", real sys.executable) of an interpreter, or None when it does not run
    (a pyenv shim for an inactive version exits 127)."""
    # -S -E: the answer needs neither site (a base interpreter's .pth files cost it tens of milliseconds)
    # nor PYTHON* variables; both flags exist on every version from 2.7 on.
    try:
        proc = subprocess.run(
            [executable, "-S", "-E", "-c",
             "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.split()
    return (lines[0], lines[1]) if proc.returncode == 0 and len(lines) == 2 else None


def _matches(found: str, wanted: str) -> bool:
    return found == wanted or found.startswith(wanted + ".")


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(x) for x in m.groups()) if m else (0,)


def _clone_tree(src: Path, dest: Path, *, private: bool = False) -> None:
    """Copy of a venv, hard links unless `private` (then a real, reflinked where possible, copy); `bin/`
    files that name `src` are rewritten (new inodes) to name `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    how = ["cp", "-a", "--reflink=auto"] if private else ["cp", "-al"]
    proc = subprocess.run([*how, str(src), str(dest)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # e.g. across filesystems, or no GNU cp: fall back to a plain copy
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)
    _relocate_scripts(dest, src)


def harden(venv: Path) -> int:
    """Clear the group and other write bits of every file and directory in `venv` (links are not
    followed); returns how many entries changed. A cached file writable by another uid could be changed
    through an instance's hard link by a sandbox running as that uid."""
    changed = 0
    for top, dirs, files in os.walk(venv):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022, follow_symlinks=False)
                changed += 1
    return changed


def _built_hardened(venv: Path) -> bool:
    """Whether the cached `venv`'s record says harden() ran on it (at its build, or once since)."""
    try:
        return json.loads((venv / _COMPLETE).read_text()).get("hardened") is True
    except (OSError, ValueError, AttributeError):
        return False


def _mark_hardened(venv: Path) -> None:
    record = venv / _COMPLETE
    try:
        meta = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    if isinstance(meta, dict):
        tmp = record.with_name(record.name + ".tmp")
        try:  # a cache this process may not write is walked again by the next one, nothing worse
            tmp.write_text(json.dumps({**meta, "hardened": True}, indent=1))
            os.replace(tmp, record)
        except OSError:
            tmp.unlink(missing_ok=True)


def relocated(data: bytes, moves: Sequence[tuple[bytes, bytes]]) -> bytes:
    """`data` with every occurrence of each move's old path replaced by its new one, in one pass (so a
    new path that contains another move's old one is never rewritten twice); longer old paths first."""
    table = dict(moves)
    if not table or not any(old in data for old in table):
        return data
    pattern = re.compile(b"|".join(re.escape(old) for old in sorted(table, key=len, reverse=True)))
    return pattern.sub(lambda m: table[m.group(0)], data)


def _relocate_scripts(venv: Path, old_path: Path) -> None:
    """Rewrite `bin/` files (shebangs, activate scripts) that name `old_path` to name `venv`.

    Each is replaced by a new file, never edited in place: in a hard-link clone that would write
    through to the cached venv.
    """
    move = [(str(old_path).encode(), str(venv).encode())]
    for entry in (venv / "bin").iterdir():
        if entry.is_symlink() or not entry.is_file() or entry.stat().st_size > 1_000_000:
            continue
        data = entry.read_bytes()
        if (new := relocated(data, move)) is not data:
            tmp = entry.with_name(f".{entry.name}.tmp")
            tmp.write_bytes(new)
            tmp.chmod(entry.stat().st_mode)
            os.replace(tmp, entry)


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created, with its directory) across processes and threads:
    one builder of a cache entry at a time."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class EnvironmentManager:
    """Builds and caches one venv per distinct (python, pip pins); safe across processes.

    `use_uv=None` picks uv when it is found (on PATH or from the uv package), else `python -m venv` + pip.
    `no_config`: uv reads no uv.toml / pyproject.toml (from the current directory, which may be a
    repository a model wrote) when it creates the venv and installs into it.
    """

    def __init__(self, cache_dir: Path | None = None, *, use_uv: bool | None = None, no_config: bool = False):
        self.no_config = no_config
        # Absolute: a clone's bin/ scripts are rewritten from the cached venv's path, which they name absolutely.
        self.cache_dir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()).absolute()
        self.uv = find_uv() if use_uv is not False else None
        if use_uv and self.uv is None:
            raise EnvBuildError("uv was requested but is not on PATH")
        self._pythons: dict[str, Path] = {}
        self._hardened: set[Path] = set()

    @property
    def builder(self) -> str:
        """ "uv" or "pip": what builds new environments."""
        return "uv" if self.uv else "pip"

    def python_for(self, version: str) -> Path:
        """An interpreter for `version` ("3.9" or "3.9.18"): `pythonX.Y` on PATH, the newest matching
        `$PYENV_ROOT/versions/X.Y.*`, or `uv python find`. Raises PythonNotFound naming the version."""
        if version in self._pythons:
            return self._pythons[version]
        major_minor = ".".join(version.split(".")[:2])
        candidates: list[str] = []
        if on_path := shutil.which(f"python{major_minor}"):
            candidates.append(on_path)
        pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
        pattern = os.path.join(
            glob.escape(pyenv_root), "versions", f"{glob.escape(version)}*", "bin", "python"
        )
        found = [p for p in glob.glob(pattern) if _matches(Path(p).parents[1].name, version)]
        candidates += sorted(found, key=_version_key, reverse=True)
        for candidate in candidates:
            probed = _probe(candidate)
            if probed and _matches(probed[0], version):
                self._pythons[version] = Path(probed[1])
                return self._pythons[version]
        if self.uv:
            proc = subprocess.run(
                [self.uv, "python", "find", "--no-python-downloads", version],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            probed = _probe(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
            if probed and _matches(probed[0], version):
                self._pythons[version] = Path(probed[1])
                return self._pythons[version]
        raise PythonNotFound(
            f"no Python {version} found: not python{major_minor} on PATH, not under "
            f"{pyenv_root}/versions/{version}*, not known to uv"
        )

    def key(self, spec: EnvironmentSpec) -> str:
        """The cache key of an environment: a hash of the interpreter and the sorted pins."""
        python = self.python_for(spec.python)
        # "build" versions the way venvs are built: bump it when that changes so old caches are not reused.
        blob = json.dumps({"python": str(python), "pip": sorted(spec.pip), "build": BUILD_VERSION})
        return f"py{spec.python}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def is_built(self, spec: EnvironmentSpec) -> bool:
        """Whether the cached venv for `spec` is complete (venv_for would not build it)."""
        return (self.cache_dir / "venvs" / self.key(spec) / _COMPLETE).is_file()

    def venv_for(self, spec: EnvironmentSpec) -> Path:
        """The cached venv for `spec`, built now if needed (one builder at a time per key, across
        processes). The venv is built under a temporary name and renamed when complete, so a failed or
        killed build never leaves a half venv under the final name. Raises EnvError."""
        key = self.key(spec)
        final = self.cache_dir / "venvs" / key
        if not (final / _COMPLETE).is_file():
            with self._lock(key):
                if not (final / _COMPLETE).is_file():
                    self._build(spec, final)
        if final not in self._hardened and not _built_hardened(final):
            # A cache built before harden() existed: walked once, then marked so.
            try:
                harden(final)
                _mark_hardened(final)
            except OSError as exc:
                raise EnvError(
                    f"the cached environment {final} has files other users can write, and "
                    f"they cannot be fixed here: {exc.filename}: {exc.strerror}"
                ) from None
        self._hardened.add(final)
        return final

    def clone(self, venv: Path, dest: Path, *, private: bool = False) -> Path:
        """A copy of the cached `venv` at `dest` for one instance: hard links (cheap), or with `private`
        a real copy, for a sandbox that would otherwise be able to write the cache through a link."""
        _clone_tree(venv, dest, private=private)
        return dest

    @staticmethod
    def env_vars(venv: Path, spec: EnvironmentSpec, base: dict[str, str] | None = None) -> dict[str, str]:
        """The process environment for a task's commands: the venv first on PATH, then `spec.env`."""
        env = dict(os.environ if base is None else base)
        for leak in (
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTEST_ADDOPTS",
            "PYTEST_CURRENT_TEST",
            "PYTEST_XDIST_WORKER",
        ):
            env.pop(leak, None)
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(spec.env)
        return env

    @staticmethod
    def task_env(venv: Path, spec: EnvironmentSpec) -> dict[str, str]:
        """Only the variables a task's commands need on top of a sandbox's scrubbed environment: the
        venv first on PATH, then `spec.env`. Nothing else of this process's environment (API keys...)."""
        env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.update(spec.env)
        return env

    def _lock(self, key: str) -> AbstractContextManager[None]:
        return exclusive(self.cache_dir / "locks" / f"{key}.lock")

    def _build(self, spec: EnvironmentSpec, final: Path) -> None:
        python = self.python_for(spec.python)
        staging = final.with_name(f".{final.name}.build-{os.getpid()}")
        for stale in final.parent.glob(f".{final.name}.build-*"):  # left by killed builders
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if self.uv:
            isolated = ["--no-config"] if self.no_config else []
            steps = [[self.uv, "venv", *isolated, "--quiet", "--seed", "--python", str(python), str(staging)]]
            if spec.pip:
                steps.append(
                    [
                        self.uv,
                        "pip",
                        "install",
                        *isolated,
                        "--compile-bytecode",
                        "--python",
                        str(staging / "bin" / "python"),
                        *spec.pip,
                    ]
                )
        else:
            steps = [[str(python), "-m", "venv", str(staging)]]
            if spec.pip:
                steps.append([str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet", *spec.pip])
        log: list[str] = []
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        try:
            for cmd in steps:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}(exit {proc.returncode})\n")
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()
                    raise EnvBuildError(
                        f"building the Python {spec.python} environment failed at `{Path(cmd[0]).name} "
                        f"{cmd[1]}`: {tail[-1] if tail else 'exit ' + str(proc.returncode)}",
                        "".join(log),
                    )
            harden(staging)
            os.rename(staging, final)
            _relocate_scripts(final, staging)
            meta = {"python": str(python), "pip": spec.pip, "builder": self.builder,
                    "build_s": round(time.monotonic() - started, 3), "hardened": True}  # fmt: skip
            (final / _COMPLETE).write_text(json.dumps(meta, indent=1))
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
