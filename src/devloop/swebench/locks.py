"""A repository's requirements at `environment_setup_commit`, resolved once into a stored lock.

The official images install `pip install -r <file>` from the repository at the setup commit, at the time
the images were built. devloop reads the same file from the mirror (git plumbing with the isolated
configuration: no repository config, attributes or hooks; a blob is read, nothing is checked out),
expands it the official way (`requirements.expand_requirements`), layers the spec's pins over it, and
resolves the whole list with `uv pip compile --exclude-newer EXCLUDE_NEWER`. The resolved pins are stored
under the cache, keyed by everything that went in, so a second load gives the same pins without the
network and the environment's cache key (a hash of its pins) stays put.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from devloop.eval.envs import EnvError, EnvironmentManager, find_uv
from devloop.eval.source import SourceError, find_repository
from devloop.swebench.environments import SwebenchEnvironment
from devloop.swebench.requirements import _constrains, _name, expand_requirements, layer, requirement_lines
from devloop.swebench.specs import table
from devloop.tasks.model import Task
from devloop.workspace import WorkspaceError, git

# About when the official SWE-bench images were built (swebench 2.x, mid 2024): nothing uploaded later
# can enter a lock, so the packages are the ones those images could have installed.
EXCLUDE_NEWER = "2024-07-01T00:00:00Z"
# Bump when the lock's format or resolution changes, so older stored locks are not reused.
LOCK_VERSION = 8
# An exact pin names its version whatever the date (the specs pin a few releases uploaded after
# EXCLUDE_NEWER, e.g. sphinx's tox==4.16.0): the cut-off is lifted for those packages alone.
_NO_CUTOFF = "2100-01-01T00:00:00Z"
_EXACT_PIN = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*[A-Za-z0-9.+!_-]+\s*(?:;.*)?$"
)


_EXTRAS = re.compile(r"""(?:^|\s)['"]?\.\[([A-Za-z0-9_,.\-]+)\]""")


class LockError(Exception):
    """A requirements lock cannot be made; the message is one line naming the missing piece."""


def mirror_reader(
    repo: Path, commit: str, role: str = "environment_setup_commit"
) -> Callable[[str], str | None]:
    """`read(path)`: a file of `repo` at `commit`, or None when absent. Raises LockError naming the
    commit by `role` when it is not in the repository."""
    try:
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
    except WorkspaceError:
        raise LockError(f"{role} {commit[:12]} is not in {repo}") from None

    def read(path: str) -> str | None:
        try:  # `cat-file blob` applies no filter or textconv: the bytes as committed
            return git(repo, "cat-file", "blob", f"{commit}:{path}")
        except WorkspaceError:
            return None

    return read


def _key(requirements: Sequence[str], python: str, exclude_newer: str, index_args: Sequence[str]) -> str:
    blob = json.dumps(
        {
            "requirements": list(requirements),
            "python": python,
            "exclude_newer": exclude_newer,
            "index": list(index_args),
            "lock": LOCK_VERSION,
        }  # fmt: skip
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def exact_pins(requirements: Sequence[str]) -> list[str]:
    """The names `requirements` pin to one exact version (`name==1.2`, not `name==1.*`), sorted."""
    return sorted({m.group(1).lower() for line in requirements if (m := _EXACT_PIN.match(line))})


def _pins(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@dataclass(frozen=True)
class ProjectStandIn:
    """The tree `pip install -e .` installs, for the resolver: its name, version and requirements as a
    static pyproject.toml in a scratch directory (uv reads static metadata without building)."""

    name: str | None
    version: str | None
    requires: tuple[str, ...]

    def key(self) -> list[str]:
        return [f"# project {self.name} {self.version}", *(f"# requires {r}" for r in self.requires)]

    def write(self, where: Path) -> str:
        """Write the stand-in under `where`; the requirement line naming it."""
        doc = {"name": self.name, "version": self.version, "dependencies": list(self.requires)}
        text = "[project]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in doc.items())
        (where / "pyproject.toml").write_text(text, encoding="utf-8")
        return f"{self.name} @ {where.resolve().as_uri()}"

    def is_line(self, pin: str) -> bool:
        """Whether `pin` is the stand-in's own line in the resolution."""
        name = re.split(r"[\s@=<>!~;\[]", pin, maxsplit=1)[0]
        return _canonical(name) == _canonical(self.name or "") and " @ file:" in pin


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_name(read: Callable[[str], str | None]) -> str | None:
    """The distribution name the tree declares: pyproject's project.name, setup.cfg's metadata name or
    a literal `name=` given to setup() (None when none is readable)."""
    text = read("pyproject.toml")
    if text is not None:
        try:
            name = tomllib.loads(text).get("project", {}).get("name")
        except (tomllib.TOMLDecodeError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            return name
    cfg = read("setup.cfg")
    if cfg is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(cfg)
            name = parser.get("metadata", "name", fallback="").strip()
        except configparser.Error:
            name = ""
        if name:
            return name
    setup = read("setup.py")
    if setup is None:
        return None
    try:
        tree = ast.parse(setup)
    except (SyntaxError, ValueError):
        return None
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) == "setup":
            for keyword in call.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    value = keyword.value.value
                    return value if isinstance(value, str) and value else None
    return None


def _failure(proc: subprocess.CompletedProcess[str]) -> str:
    """uv's first lines (what failed), and for a package that failed to build the last line its build
    printed (the exception: `ImportError: cannot import name 'Feature'`), which names the cause."""
    lines = [line.strip() for line in proc.stderr.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("hint:", "help:"))]
    if not lines:
        return f"exit {proc.returncode}"
    reason = " ".join(lines[:3])
    printed = lines[3:]
    if "Failed to build" in reason and printed and printed[-1] not in reason:
        reason += f" ... {printed[-1]}"
    return reason


class Locker:
    """Makes and stores requirement locks under `cache_dir/requirement-locks` (the env cache's root).

    `index_args` are extra `uv pip compile` options (e.g. `--no-index --find-links DIR`), part of the key.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        manager: EnvironmentManager | None = None,
        exclude_newer: str = EXCLUDE_NEWER,
        index_args: Sequence[str] = (),
    ):
        self.dir = Path(cache_dir) / "requirement-locks"
        self.manager = manager or EnvironmentManager(cache_dir)
        self.exclude_newer = exclude_newer
        self.index_args = list(index_args)

    def lock(
        self, requirements: Sequence[str], python: str, project: ProjectStandIn | None = None
    ) -> list[str]:
        """The pins `uv pip compile` resolves `requirements` to for Python `python` (with `project`
        standing in for the tree being installed); stored, and read back from the store when the same
        inputs were resolved before. Raises LockError."""
        keyed = [*requirements, *(project.key() if project else [])]
        stored = self.dir / f"{_key(keyed, python, self.exclude_newer, self.index_args)}.txt"
        if stored.is_file():
            return _pins(stored.read_text(encoding="utf-8"))
        uv = find_uv()
        if uv is None:
            raise LockError("uv, which resolves the requirements file into a lock")
        try:
            interpreter = self.manager.python_for(python)
        except EnvError as exc:
            raise LockError(exc.message) from None
        cmd = [uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--python",
               str(interpreter), "--exclude-newer", self.exclude_newer, *self.index_args]  # fmt: skip
        for name in exact_pins(requirements):
            cmd += ["--exclude-newer-package", f"{name}={_NO_CUTOFF}"]
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        with tempfile.TemporaryDirectory(prefix="devloop-lock-") as scratch:
            lines = list(requirements)
            if project is not None:
                lines.append(project.write(Path(scratch)))
            proc = subprocess.run(
                cmd, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, check=False
            )
        if proc.returncode != 0:
            raise LockError(f"a resolution of the requirements for Python {python}: {_failure(proc)}")
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = stored.with_name(f".{stored.name}.{os.getpid()}")
        tmp.write_text(
            f"# uv pip compile --exclude-newer {self.exclude_newer}\n{proc.stdout}", encoding="utf-8"
        )
        os.replace(tmp, stored)
        return _pins(proc.stdout)

    def _lock_project(self, pins: list[str], project: ProjectStandIn | None, python: str) -> list[str]:
        """Resolve the pins with the project's own requirements: through its stand-in when it has a
        name and version (a dependency that needs another release of the project, such as a
        sphinxcontrib plugin needing Sphinx>=5, is then ruled out as pip rules it out), else joined to
        the pins, else layered over them where they conflict."""
        requires = list(project.requires) if project else []
        if project is not None and project.name and project.version:
            # The official install runs last: a pin the project's own constraints contradict gives way.
            constrained = {_name(r) for r in requires if _constrains(r)} - {None}
            for kept in (pins, [p for p in pins if _name(p) not in constrained]):
                try:
                    return [p for p in self.lock(kept, python, project) if not project.is_line(p)]
                except LockError:
                    continue
        try:
            return self.lock([*pins, *requires], python)
        except LockError:
            if not requires:
                raise
            return self.lock(layer(pins, requires), python)

    def scm_env(self, task: Task, mirrors: Path | None) -> dict[str, str]:
        """SETUPTOOLS_SCM_PRETEND_VERSION for the task's tree (see `scm_version`), or {}."""
        try:
            repo = find_repository(task, mirrors)
        except SourceError:
            return {}
        version = scm_version(repo, task.base_commit)
        return {"SETUPTOOLS_SCM_PRETEND_VERSION": version} if version else {}

    def environment_pins(
        self, task: Task, environment: SwebenchEnvironment, mirrors: Path | None
    ) -> list[str]:
        """The resolved pins of `environment`: its requirements file read from the task's mirror at the
        setup commit, its own pins layered over it, and under both the build backend and dependencies
        the pyproject.toml at base_commit names (installs run without build isolation: the sandbox has no network). Raises LockError
        naming what is missing."""
        source = environment.requirements
        paths = " or ".join(source.paths) if source is not None else ""
        try:
            repo = find_repository(task, mirrors)
        except SourceError as exc:
            if source is None:  # nothing to read: the official pins, resolved as they are
                return self.lock(environment.pip, environment.python)
            raise LockError(f"the requirements file ({paths}) from a mirror: {exc}") from None
        commit = (source.commit if source else None) or task.environment_setup_commit or task.base_commit
        read = mirror_reader(repo, commit)
        requirements: list[str] = []
        if source is not None:
            try:
                _, text = expand_requirements(read, source.paths, table().replace_requirements)
            except LookupError:
                raise LockError(f"the requirements file ({paths}) at {commit[:12]} in {repo}") from None
            requirements = requirement_lines(text)
        # What `pip install -e .` of the tree at base_commit asks for: its build backend and declared
        # dependencies (setup.py ones cannot be read without running it). Installed last officially, it
        # re-resolves what the pins leave unsatisfied: both constraints are kept when they agree, and
        # the project's replace a conflicting pin otherwise.
        pins = layer(requirements, environment.pip)
        if environment.install and "pip install" in environment.install and "pip" not in map(_name, pins):
            # The official image's pip is the one of its build date: pip 25 dropped the `setup.py
            # develop` fallback that `pip install -e .` of a setuptools<64 project (pylint 2.15) needs.
            pins = [*pins, "pip"]
        tree = edited_reader(mirror_reader(repo, task.base_commit, "base_commit"), environment.install)
        requires = project_requires(tree, install_extras(environment.install))
        stand_in = ProjectStandIn(
            name=project_name(tree), version=scm_version(repo, task.base_commit), requires=tuple(requires)
        )
        return self._lock_project(pins, stand_in, environment.python)


_DESCRIBED = re.compile(r"^v?(?P<tag>.+)-(?P<distance>\d+)-g(?P<hash>[0-9a-f]+)$")


def scm_version(repo: Path, commit: str) -> str | None:
    """The version setuptools_scm would give the tree at `commit` in a clone with history, from the
    mirror's tags (`git describe`): the tag itself, or the next patch version's `.devN+gHASH`; None
    without a tag. A tree extracted with `git archive` has no .git, so setuptools_scm cannot tell."""
    try:
        described = git(repo, "describe", "--tags", "--long", commit).strip()
    except WorkspaceError:
        return None
    found = _DESCRIBED.match(described)
    if found is None:
        return None
    tag, distance, short = found.group("tag"), int(found.group("distance")), found.group("hash")
    try:
        version = Version(tag)
    except InvalidVersion:
        return None
    if distance == 0:
        return str(version)
    if version.is_devrelease:  # "8.0.0.dev0" + 53 commits: still that release's dev line
        return f"{version.base_version}.dev{distance}+g{short}"
    if version.is_prerelease:
        return f"{version}.dev{distance}+g{short}"
    *head, last = version.release
    return ".".join(map(str, [*head, last + 1])) + f".dev{distance}+g{short}"


_SED_SPECIAL = set("+?(){}|")


def _bre_to_python(pattern: str) -> str:
    """A sed basic regular expression as a Python one: `\\(`/`\\)` group, `.`, `*`, `^`, `$` and brackets
    keep their meaning, and what is literal in a BRE (`+ ? ( ) { } |`) is escaped."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "()" else re.escape(nxt))
            i += 2
            continue
        out.append("\\" + ch if ch in _SED_SPECIAL else ch)
        i += 1
    return "".join(out)


def _sed_replacement(text: str) -> str:
    """A sed replacement as a Python one: `&` is the match, `\\N` a group, `\\X` the literal X."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(f"\\g<{nxt}>" if nxt.isdigit() else nxt.replace("\\", "\\\\"))
            i += 2
            continue
        out.append("\\g<0>" if ch == "&" else ch.replace("\\", "\\\\"))
        i += 1
    return "".join(out)


def sed_edits(install: str | None) -> list[tuple[str, re.Pattern[str], str, bool]]:
    """The `sed -i 's/PATTERN/REPLACEMENT/[g]' FILE` steps of an install script, as (file, regex,
    replacement, global): the official pre_install edits setup.py and pyproject.toml (sphinx caps its
    sphinxcontrib pins, astropy its setuptools) before installing, so the declared requirements are read
    as edited. A step of any other form is left out."""
    edits = []
    for line in (install or "").splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) != 4 or words[:2] != ["sed", "-i"] or not words[2].startswith("s") or len(words[2]) < 2:
            continue
        delimiter = words[2][1]
        parts = re.split(rf"(?<!\\){re.escape(delimiter)}", words[2][2:])
        if len(parts) != 3 or parts[2] not in ("", "g"):
            continue
        try:
            regex = re.compile(_bre_to_python(parts[0]))
        except re.error:
            continue
        edits.append((words[3], regex, _sed_replacement(parts[1]), parts[2] == "g"))
    return edits


def edited_reader(read: Callable[[str], str | None], install: str | None) -> Callable[[str], str | None]:
    """`read` with the install script's sed edits applied to what it returns (see `sed_edits`)."""
    edits = sed_edits(install)

    def edited(path: str) -> str | None:
        text = read(path)
        if text is None:
            return None
        lines = text.split("\n")
        for file, regex, replacement, every in edits:
            if file == path:  # sed edits line by line; the first match of each line unless /g
                lines = [regex.sub(replacement, ln, count=0 if every else 1) for ln in lines]
        return "\n".join(lines)

    return edited


def install_extras(install: str | None) -> list[str]:
    """The extras the install script asks of the tree (`pip install -e .[dev]` -> ["dev"])."""
    return [e.strip() for group in _EXTRAS.findall(install or "") for e in group.split(",") if e.strip()]


def _cfg_lines(value: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in value.splitlines())
    return [line for line in lines if line]


def setup_cfg_requires(read: Callable[[str], str | None], extras: Sequence[str] = ()) -> list[str]:
    """`options.install_requires` and the `extras` of `options.extras_require` in the tree's setup.cfg,
    read as the declarative file it is (never run); [] when absent or unreadable."""
    text = read("setup.cfg")
    if text is None:
        return []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    out = _cfg_lines(parser.get("options", "install_requires", fallback=""))
    for extra in extras:
        out += _cfg_lines(parser.get("options.extras_require", extra, fallback=""))
    return out


def _literal_strings(node: ast.expr, names: dict[str, ast.expr]) -> list[str]:
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def setup_py_requires(read: Callable[[str], str | None], extras: Sequence[str] = ()) -> list[str]:
    """`install_requires`, `setup_requires` and the `extras` of `extras_require` given to setup() in the
    tree's setup.py as literals, or as names assigned a literal at the top level: parsed, never run
    (anything computed is left out)."""
    text = read("setup.py")
    if text is None:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    names = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    out: list[str] = []
    for call in ast.walk(tree):
        if not (
            isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) == "setup"
        ):
            continue
        for keyword in call.keywords:
            if keyword.arg in ("install_requires", "setup_requires"):
                out += _literal_strings(keyword.value, names)
            elif keyword.arg == "extras_require":
                extras_node = keyword.value
                if isinstance(extras_node, ast.Name) and extras_node.id in names:
                    extras_node = names[extras_node.id]
                if not isinstance(extras_node, ast.Dict):
                    continue
                for key, value in zip(extras_node.keys, extras_node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value in extras:
                        out += _literal_strings(value, names)
    return out


# What pip builds a tree with when its pyproject.toml names no build system (or it has none): the
# legacy setuptools backend. In an isolated build pip downloads these; installs here run without build
# isolation (no network in the sandbox), so they must be in the lock, dated like every other pin. Left to
# the venv's seed they are today's setuptools, whose `setup.py develop` (80+) itself runs an isolated
# `pip install -e .` and so reaches for the network.
PIP_DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


def project_requires(read: Callable[[str], str | None], extras: Sequence[str] = ()) -> list[str]:
    """`build-system.requires` (pip's default when the tree's pyproject.toml has none, or is absent),
    `project.dependencies` and the `extras`' optional dependencies of the tree's pyproject.toml, then
    what its setup.cfg and setup.py declare."""
    text = read("pyproject.toml")
    declared = setup_cfg_requires(read, extras) + setup_py_requires(read, extras)
    if text is None:
        return [*PIP_DEFAULT_BUILD_REQUIRES, *declared]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return declared
    out: list[str] = []
    if not isinstance(data.get("build-system"), dict):
        out += PIP_DEFAULT_BUILD_REQUIRES
    for table_name, key in (("build-system", "requires"), ("project", "dependencies")):
        section = data.get(table_name, {})
        values = section.get(key, []) if isinstance(section, dict) else []
        out += [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
    optional = data.get("project", {}).get("optional-dependencies", {})
    for extra in extras:
        values = optional.get(extra, []) if isinstance(optional, dict) else []
        out += [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
    return out + declared
