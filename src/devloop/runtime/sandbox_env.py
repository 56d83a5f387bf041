"""What a sandboxed shell sees of the host: its environment variables and the paths it may read.

Shared by the bwrap and docker runtimes. The environment is scrubbed to an allowlist, so tokens and
credentials that live in variables (AWS_*, GITHUB_TOKEN, OPENAI_API_KEY, SSH_AUTH_SOCK...) never reach a
command unless passed on purpose (`--env KEY=VAL`, `--pass-env NAME`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# Variables kept from the given environment: locale, terminal, time zone, and what a prepared Python
# environment needs to be found (PATH and VIRTUAL_ENV point at the harness's venv).
ENV_ALLOWLIST: frozenset[str] = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TZ",
        "COLUMNS",
        "LINES",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PYENV_VERSION",
        "SOURCE_DATE_EPOCH",
        "NO_COLOR",
        "FORCE_COLOR",
    }
)
ENV_ALLOW_PREFIXES: tuple[str, ...] = ("LC_",)
# Set in every sandbox: the fresh HOME and a /tmp that is the sandbox's own.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env_name(name: str, where: str) -> str:
    """`name` if it is a valid variable name; ValueError naming `where` otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}: {name!r} is not a valid environment variable name")
    return name


def parse_env_assignments(items: Iterable[str], where: str = "--env") -> dict[str, str]:
    """['A=1', 'B=x=y'] -> {'A': '1', 'B': 'x=y'}; ValueError for an item without '=' or a bad name."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{where}: {item!r} is not KEY=VALUE")
        out[check_env_name(name, where)] = value
    return out


def sandbox_env(
    env: Mapping[str, str] | None,
    *,
    home: str,
    extra_env: Mapping[str, str] | None = None,
    pass_env: Iterable[str] | None = None,
) -> dict[str, str]:
    """The environment inside a sandbox: `env` (default os.environ) cut to the allowlist and the names
    in `pass_env`, then `extra_env`, with HOME set to the sandbox's fresh home and TMPDIR to /tmp."""
    source = dict(os.environ if env is None else env)
    passed = {check_env_name(name, "--pass-env") for name in (pass_env or ())}
    out = {
        key: value
        for key, value in source.items()
        if key in ENV_ALLOWLIST or key in passed or key.startswith(ENV_ALLOW_PREFIXES)
    }
    out.setdefault("PATH", DEFAULT_PATH)
    out["HOME"] = home
    out["TMPDIR"] = "/tmp"
    out["USER"] = out["LOGNAME"] = "sandbox"
    for key, value in (extra_env or {}).items():
        out[check_env_name(key, "--env")] = value
    return out


def real_homes() -> list[Path]:
    """The invoking user's home directories ($HOME and the passwd entry), existing ones, no duplicates."""
    found: list[Path] = []
    candidates = [os.environ.get("HOME", "")]
    try:
        import pwd

        candidates.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        pass
    for raw in candidates:
        if not raw or not os.path.isabs(raw):
            continue
        path = Path(raw).absolute()
        if path != Path("/") and path.is_dir() and path not in found:
            found.append(path)
    return found


def python_env_paths(env: Mapping[str, str]) -> list[Path]:
    """Host paths a prepared Python environment in `env` needs: the whole VIRTUAL_ENV (or CONDA_PREFIX),
    each PATH entry, and for a `<prefix>/bin` entry its sibling `lib`/`lib64` (where an interpreter
    keeps its standard library) and `include` (its C headers), plus the base interpreter a venv links to. Never a whole prefix that
    is not a Python environment: `~/.local/bin` must not expose `~/.local/share` (keyrings live there)."""
    paths: list[Path] = []
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if env.get(name) and Path(env[name]).is_absolute() and Path(env[name]).is_dir():
            paths.append(Path(env[name]))
            paths.extend(_venv_bases(Path(env[name])))
    for entry in env.get("PATH", "").split(os.pathsep):
        bin_dir = Path(entry) if entry else None
        if bin_dir is None or not bin_dir.is_absolute() or not bin_dir.is_dir():
            continue
        paths.append(bin_dir)
        if bin_dir.name == "bin":
            paths.extend(_prefix_parts(bin_dir.parent))
            if (bin_dir.parent / "pyvenv.cfg").is_file():
                paths.append(bin_dir.parent)
                paths.extend(_venv_bases(bin_dir.parent))
    return _dedupe(paths)


def _prefix_parts(prefix: Path) -> list[Path]:
    """The parts of an installation prefix an interpreter in `prefix/bin` needs to run, and its
    `include` (Python.h), without which building a C extension (a task's `pip install -e .`) fails."""
    return [prefix / part for part in ("bin", "include", "lib", "lib64") if (prefix / part).is_dir()]


def _venv_bases(venv: Path) -> list[Path]:
    """The base interpreter's prefix parts for the venv at `venv` (pyvenv.cfg `home`, bin/python links).
    Remembered while its pyvenv.cfg and bin/ are unchanged: every sandbox start asks (each graded
    instance's), and the answer takes a file read, a glob and a resolve per interpreter."""
    try:
        cfg, bin_dir = os.stat(venv / "pyvenv.cfg"), os.stat(venv / "bin")
    except OSError:
        return _read_venv_bases(venv)
    key = (str(venv), cfg.st_ino, cfg.st_mtime_ns, cfg.st_size, bin_dir.st_ino, bin_dir.st_mtime_ns)
    return list(_remembered_venv_bases(key))


@functools.lru_cache(maxsize=256)
def _remembered_venv_bases(key: tuple[str, int, int, int, int, int]) -> tuple[Path, ...]:
    return tuple(_read_venv_bases(Path(key[0])))


def _read_venv_bases(venv: Path) -> list[Path]:
    out: list[Path] = []
    try:
        for line in (venv / "pyvenv.cfg").read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                out.extend(_prefix_parts(Path(value.strip()).parent))  # home = <prefix>/bin
    except OSError:
        pass
    for python in sorted((venv / "bin").glob("python*")):
        real = python.resolve()
        if real != python and real.exists():
            out.extend(_prefix_parts(real.parent.parent))
    return out


def _dedupe(paths: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def is_under(path: Path, parent: Path) -> bool:
    """True when `path` is `parent` or inside it (purely lexical, both absolute)."""
    # On the strings: `parent in path.parents` builds every parent, and a sandbox's argv asks this
    # thousands of times. Both are absolute and normalised (pathlib drops "." and doubled "/").
    p, q = str(path), str(parent)
    return p == q or p.startswith(q if q.endswith("/") else q + "/")


def outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths not inside another of them, sorted (binding a parent already shows its children)."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    out: list[Path] = []
    for path in unique:
        if not any(is_under(path, kept) for kept in out):
            out.append(path)
    return out


# Set in every shell so that tools never wait for a terminal, a pager or a prompt.
NONINTERACTIVE_ENV: dict[str, str] = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "SYSTEMD_PAGER": "",
    "TERM": "dumb",
    "PYTHONUNBUFFERED": "1",
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "GIT_TERMINAL_PROMPT": "0",
    # `git commit` without -m would otherwise open an editor on /dev/null.
    "GIT_EDITOR": "true",
    "DEBIAN_FRONTEND": "noninteractive",
}
# Startup hooks a non-interactive bash would run despite --norc, and a stale cwd from the host.
_DROPPED_ENV = ("BASH_ENV", "ENV", "PROMPT_COMMAND", "PWD", "OLDPWD")


def shell_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a shell gets: `env` (default: this process's) with NONINTERACTIVE_ENV applied."""
    out = dict(os.environ if env is None else env)
    for name in _DROPPED_ENV:
        out.pop(name, None)
    out.update(NONINTERACTIVE_ENV)
    return out
