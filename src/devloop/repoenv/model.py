"""The environment chosen for a run: what it is, why, and how a runtime shows it to the agent's commands.

An environment is an interpreter (inside a venv, or a plain installation), optionally the repository's
node_modules. The sandbox sees it read-only at its host paths, first on PATH, with VIRTUAL_ENV set, so
the agent's `python -m pytest` and the test hook run the repository's interpreter, not devloop's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.runtime.sandbox_env import DEFAULT_PATH

# Asked of an interpreter on the host: where it really lives and what it is. -I: no user site, no
# PYTHON* variables, no current directory on sys.path.
_PROBE = (
    "import json, sys; print(json.dumps({'executable': sys.executable, 'prefix': sys.prefix, "
    "'base_prefix': sys.base_prefix, 'version': '%d.%d.%d' % sys.version_info[:3]}))"
)


class EnvChoiceError(ValueError):
    """--python / --venv names something that is not a usable interpreter; the message is one line."""


@dataclass(frozen=True)
class Interpreter:
    """What an interpreter said about itself when run (a shim reports the binary it ran)."""

    executable: Path
    prefix: Path
    base_prefix: Path
    version: str

    @property
    def venv(self) -> Path | None:
        """The venv this interpreter belongs to, if it is a venv's."""
        return self.prefix if self.prefix != self.base_prefix else None


def probe(python: Path | str) -> Interpreter | None:
    """Run `python` (a file of the user's, never the agent's workspace) and ask what it is; None when it
    does not run (a pyenv shim for an inactive version exits 127, a broken venv has no base)."""
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
        data = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    if not isinstance(data, dict):
        return None
    return Interpreter(
        Path(data["executable"]), Path(data["prefix"]), Path(data["base_prefix"]), str(data["version"])
    )


def read_venv(venv: Path) -> Interpreter | None:
    """What the venv at `venv` is, read from its files without running anything in it: a venv in the
    user's tree may be the model's (`--apply` writes whatever the patch holds), and running its python on
    the host would run the model's code (the interpreter itself, a .pth file, or a standard library its
    pyvenv.cfg `home` points at). None unless pyvenv.cfg names an absolute `home` holding an interpreter
    of its version, with that version's standard library beside it, and bin/python exists."""
    try:
        text = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    cfg: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            cfg[key.strip().lower()] = value.strip()
    home = Path(cfg.get("home", ""))
    # `python -m venv` writes version, virtualenv and uv version_info (3.12.1, 3.11.7.final.0).
    found = re.match(r"(\d+)\.(\d+)\.(\d+)", cfg.get("version") or cfg.get("version_info") or "")
    if not home.is_absolute() or found is None:
        return None
    major_minor = f"{found[1]}.{found[2]}"
    names = (f"python{major_minor}", "python3", "python")
    if not any((home / name).is_file() for name in names):
        return None
    if not (home.parent / "lib" / f"python{major_minor}" / "os.py").is_file():
        return None
    python = venv / "bin" / "python"
    if not python.exists():  # a link to an interpreter that is gone: a broken venv
        return None
    return Interpreter(python, venv, home.parent, ".".join(found.groups()))


def devloop_prefix() -> Path | None:
    """devloop's own venv, when it runs from one: never chosen for the repository by accident."""
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


def is_shim_dir(entry: Path) -> bool:
    """A pyenv / asdf / rtx shim directory: its scripts call the version manager, which the sandbox hides."""
    return entry.name == "shims"


def host_path(env: dict[str, str] | None = None) -> list[Path]:
    """The host's PATH without shim directories and without devloop's own venv."""
    own = devloop_prefix()
    out: list[Path] = []
    for raw in (env if env is not None else os.environ).get("PATH", DEFAULT_PATH).split(os.pathsep):
        entry = Path(raw) if raw else None
        if entry is None or not entry.is_absolute() or is_shim_dir(entry):
            continue
        if own is not None and entry in (own / "bin", own.resolve() / "bin"):
            continue
        if entry not in out:
            out.append(entry)
    return out


def cache_root(cache_dir: Path | None = None) -> Path:
    """devloop's environment cache, shared with the harness (harness.envs.default_cache_dir): the user
    cache dir's `devloop/envs`."""
    if cache_dir is not None:
        return Path(cache_dir)
    import platformdirs

    return Path(platformdirs.user_cache_dir("devloop")) / "envs"


def prefix_parts(prefix: Path) -> list[Path]:
    return [prefix / part for part in ("bin", "lib", "lib64") if (prefix / part).is_dir()]


@dataclass
class RepoEnvironment:
    """The chosen environment. kind: python (--python), venv (--venv), virtual_env, repo_venv, uv,
    poetry, pdm, requirements, pyproject, path, image (docker: the image's own), none (no interpreter).
    `bin_dir` goes first on PATH; `mounts` are shown read-only at their paths; `remaps` are editable
    installs of the repository (host path -> path relative to the repository), redirected to the
    workspace so that the tests import the agent's copy."""

    kind: str
    reason: str
    python: Path | None = None
    venv: Path | None = None
    bin_dir: Path | None = None
    mounts: list[Path] = field(default_factory=list)
    remaps: list[str] = field(default_factory=list)
    node_modules: Path | None = None
    version: str | None = None
    pending: Any = None  # a cached build still to make (build.py), run by `ready()`

    def line(self) -> str:
        """`env: /repo/.venv (the repo's .venv)` for the run's first line."""
        where = self.venv or self.python
        text = f"env: {where} ({self.reason})" if where else f"env: {self.reason}"
        if self.node_modules is not None:
            text += f"; node_modules: {self.node_modules} (on PATH and NODE_PATH)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "python": str(self.python) if self.python else None,
            "venv": str(self.venv) if self.venv else None,
            "version": self.version,
            "reason": self.reason,
            "node_modules": str(self.node_modules) if self.node_modules else None,
        }

    def variables(self, workspace: Path, base_env: dict[str, str] | None = None) -> dict[str, str]:
        """What the agent's shell gets: the environment first on PATH, VIRTUAL_ENV, the editable installs
        redirected to `workspace`, node_modules' bins and modules."""
        if self.kind == "image":
            return {}
        first = [p for p in (self.bin_dir, self.node_modules and self.node_modules / ".bin") if p]
        path = [str(p) for p in first] + [str(p) for p in host_path(base_env) if p not in first]
        out = {"PATH": os.pathsep.join(path), "VIRTUAL_ENV": str(self.venv) if self.venv else ""}
        if self.python is not None:
            out["DEVLOOP_PYTHON"] = str(self.python)  # the test hook runs this one, whatever PATH says
        # devloop's own PYTHONPATH is not the repository's; editable installs of it come from the workspace.
        out["PYTHONPATH"] = os.pathsep.join(str(workspace / rel) for rel in self.remaps)
        if self.node_modules is not None:
            out["NODE_PATH"] = str(self.node_modules)
        return out

    def read_only(self) -> list[Path]:
        """Host paths the sandbox must show (read-only) for this environment to run."""
        out: list[Path] = []
        for path in [*self.mounts, *([self.node_modules] if self.node_modules else [])]:
            for p in (path.absolute(), path.resolve()):
                if p not in out and p.exists():
                    out.append(p)
        return out
