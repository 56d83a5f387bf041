"""Which distributions a repository declares (requirements*.txt, pyproject, setup.cfg, setup.py): the
`install` rescue action installs a missing module only when the repository asks for it."""

from __future__ import annotations

import ast
import configparser
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from devloop import safefs

# A declaration file larger than this is not read (no real requirements file comes close).
_MAX_BYTES = 4 * 1024 * 1024


def _text(root: Path, rel: str) -> str:
    """The text of `rel` beneath `root`; '' when missing, too large, not a regular file or a link out."""
    try:
        return safefs.read_text(root, rel, max_bytes=_MAX_BYTES)
    except OSError:
        return ""


def _mtime(root: Path, rel: str) -> float:
    try:
        return safefs.stat_path(root, rel).st_mtime
    except OSError:
        return -1.0


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_lines(items: Any) -> list[str]:
    if isinstance(items, str):
        items = items.splitlines()
    return [
        s.split(" #")[0].strip()
        for s in items
        if isinstance(s, str) and s.strip() and not s.strip().startswith(("#", "-"))
    ]


@lru_cache(maxsize=32)
def _declared(root: Path, stamp: tuple[tuple[str, float], ...]) -> tuple[tuple[str, str, str], ...]:
    out: list[tuple[str, str, str]] = []  # (normalised name, requirement, file)

    def add(reqs: list[str], where: str) -> None:
        for req in reqs:
            m = _REQ_NAME.match(req)
            if m and "://" not in req:
                out.append((normalize(m.group(1)), req.split(" --")[0].strip(), where))

    for rel, _ in stamp:
        text = _text(root, rel)
        if rel.endswith((".txt", ".in")):
            add(_req_lines(text), rel)
        elif rel == "pyproject.toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                continue
            project = data.get("project", {})
            add(_req_lines(project.get("dependencies", [])), rel)
            for extra in project.get("optional-dependencies", {}).values():
                add(_req_lines(extra), rel)
            for group in data.get("dependency-groups", {}).values():
                add(_req_lines(group), rel)
            poetry = data.get("tool", {}).get("poetry", {})
            tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
            tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values()]
            add([n for t in tables for n in t if n.lower() != "python"], rel)
        elif rel == "setup.cfg":
            cfg = configparser.ConfigParser(interpolation=None)
            try:
                cfg.read_string(text)
            except configparser.Error:
                continue
            for key in ("install_requires", "tests_require"):
                add(_req_lines(cfg.get("options", key, fallback="")), rel)
            if cfg.has_section("options.extras_require"):
                for _, value in cfg.items("options.extras_require"):
                    add(_req_lines(value), rel)
        elif rel == "setup.py":
            add(_setup_py_requirements(text), rel)
    return tuple(out)


def _setup_py_requirements(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lists: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List | ast.Tuple):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    lists[t.id] = [
                        e.value
                        for e in node.value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    ]
    reqs: list[str] = []

    def strings(value: ast.expr) -> list[str]:
        if isinstance(value, ast.Name):
            return lists.get(value.id, [])
        if isinstance(value, ast.Dict):
            return [s for v in value.values if v is not None for s in strings(v)]
        if isinstance(value, ast.List | ast.Tuple):
            return [e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return []

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in ("install_requires", "tests_require", "extras_require"):
                    reqs += strings(kw.value)
    return _req_lines(reqs)


def _requirement_files(root: Path) -> list[Path]:
    files = [
        *root.glob("*requirements*.txt"),
        *root.glob("requirements*/*.txt"),
        *root.glob("*requirements*.in"),
    ]
    files += [root / n for n in ("pyproject.toml", "setup.cfg", "setup.py") if (root / n).is_file()]
    return sorted(set(files))


def declared_requirement(root: Path, module: str, import_names: dict[str, Any]) -> tuple[str, str] | None:
    """(requirement, file) of the declared dependency providing import `module`, or None when none does."""
    files = _requirement_files(root)
    rels = [f.relative_to(root).as_posix() for f in files]
    stamp = tuple((rel, _mtime(root, rel)) for rel in rels)
    declared = _declared(root, stamp)
    parts = module.split(".")
    candidates: list[str] = []
    for i in range(len(parts), 0, -1):
        mapped = import_names.get(".".join(parts[:i]), [])
        candidates += [mapped] if isinstance(mapped, str) else list(mapped)
    candidates += [parts[0], parts[0].replace("_", "-"), f"python-{parts[0]}", f"py{parts[0]}"]
    for cand in map(normalize, candidates):
        for name, req, where in declared:
            if name == cand:
                return req, where
    return None
