"""What a tree declares about itself, read as data from the mirror and never run: its distribution name,
the version setuptools_scm would give it, and the requirements `pip install -e .[extras]` would ask for
(pyproject.toml, setup.cfg, literal setup.py arguments, pip's default build backend)."""

from __future__ import annotations

import ast
import configparser
import json
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from devloop.workspace import WorkspaceError, git

_EXTRAS = re.compile(r"""(?:^|\s)['"]?\.\[([A-Za-z0-9_,.\-]+)\]""")


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
