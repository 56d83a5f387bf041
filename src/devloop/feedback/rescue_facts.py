"""Facts the rescue rules look up in the repository: where a name or fixture is defined, an import cycle,
a function's signature, paths close to a missing one (declared requirements: feedback.requirements).

Each lookup takes the rule's template values (regex groups first), the workspace root, the matched output and
the rule tables, and returns more template values. Lookups only read; a file that cannot be read is skipped.
"""

from __future__ import annotations

import ast
import difflib
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from devloop import safefs

LookupName = Literal[
    "fixtures", "import_cycle", "definition", "signature", "command_package", "pytest_plugin", "recursion",
    "snippet", "close_paths",
]  # fmt: skip
Lookup = Callable[[dict[str, Any], Path, str, dict[str, dict[str, Any]]], dict[str, Any]]

_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "env", ".env", "node_modules", "__pycache__", ".tox", ".nox",
              "build", "dist", "site-packages", ".devloop", ".mypy_cache", ".pytest_cache", ".eggs"}  # fmt: skip
_MAX_FILES = 5000
# Larger files are skipped: no rule looks for anything in a generated or data file of that size.
MAX_READ_BYTES = 4 * 1024 * 1024
_MAX_LISTED = 5


def relative(path: str, root: Path) -> str:
    """`path` relative to the workspace root when it lies inside it (as posix), else unchanged."""
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path
    return p.as_posix().removeprefix("./")


def repo_files(root: Path, suffix: str | None = ".py") -> Iterator[Path]:
    """Files under `root` (skipping VCS, virtualenv, cache and build directories), at most _MAX_FILES.

    Directories are listed beneath the open root (`safefs`), so one the sandbox swaps for a link while
    this walks is skipped rather than listed; links are yielded as files, never descended into."""
    try:
        fs = safefs.SafeRoot(root)
    except OSError:
        return
    with fs:
        count = 0
        stack = [""]
        while stack:
            d = stack.pop()
            try:
                entries = fs.listdir(d)
            except OSError:
                continue
            for e in entries:
                rel = posixpath.join(d, e.name)
                if e.is_dir:
                    if e.name not in _SKIP_DIRS and not e.name.endswith(".egg-info"):
                        stack.append(rel)
                elif suffix is None or e.name.endswith(suffix):
                    count += 1
                    if count > _MAX_FILES:
                        return
                    yield root / rel


def _text(root: Path, path: Path) -> str:
    """The text of `path` (under `root`); '' when it is missing, too large, not a regular file or reached
    through a link out of the workspace."""
    try:
        return safefs.read_text(root, path, max_bytes=MAX_READ_BYTES)
    except OSError:
        return ""


def module_name(rel: str) -> str:
    """The dotted module name of a repository-relative .py path (src/ layout understood)."""
    parts = rel.removesuffix(".py").split("/")
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {module_name(p.relative_to(root).as_posix()): p for p in repo_files(root)}


def _where(root: Path, path: Path, line: int) -> str:
    return f"{path.relative_to(root).as_posix()}:{line}"


# --- definitions, signatures ---------------------------------------------------------------------------------


def definition(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`defined`: where `name` is defined (def, class, module-level assignment); `similar`: close names in
    `module` when it is a repository module (a rename shows up here)."""
    name = values.get("name", "")
    rx = re.compile(
        rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b|^{re.escape(name)}[ \t]*[:=]", re.M
    )
    defined: list[str] = []
    for path in repo_files(root):
        text = _text(root, path)
        for m in rx.finditer(text):
            defined.append(_where(root, path, text.count("\n", 0, m.start()) + 1))
        if len(defined) >= _MAX_LISTED:
            break
    similar: list[str] = []
    module = values.get("module")
    target = _modules(root).get(module) if module else None
    if target is not None:
        names = _top_level_names(_text(root, target))
        similar = difflib.get_close_matches(name, sorted(names - {name}), n=_MAX_LISTED, cutoff=0.5)
    return {"defined": defined[:_MAX_LISTED], "similar": similar}


def _top_level_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(re.findall(r"^(?:def|class)\s+(\w+)|^(\w+)\s*=", source, re.M))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def signature(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`signatures`: `file:line: def f(...)` for each definition of the called function (its last dotted part)."""
    func = values.get("func", "")
    last = func.split(".")[-1]
    owner = func.split(".")[-2] if "." in func else None
    rx = re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(last)}[ \t]*\(", re.M)
    found: list[tuple[bool, str]] = []
    for path in repo_files(root):
        text = _text(root, path)
        for m in rx.finditer(text):
            header = text[m.start() :].split("\n")
            joined = ""
            for line in header[:12]:
                joined += (" " if joined else "") + line.strip()
                if line.rstrip().endswith(":"):
                    break
            in_owner = owner is not None and re.search(rf"^[ \t]*class[ \t]+{re.escape(owner)}\b", text, re.M)
            found.append(
                (not in_owner, f"{_where(root, path, text.count(chr(10), 0, m.start()) + 1)}: {joined}")
            )
    return {"signatures": [s for _, s in sorted(found)][:3]}


# --- fixtures, imports ---------------------------------------------------------------------------------------

_FIXTURE = re.compile(
    r"@pytest\.fixture\b(?P<args>[^\n]*)\n(?:[ \t]*@[^\n]*\n)*[ \t]*(?:async[ \t]+)?def[ \t]+(?P<func>\w+)"
)


def fixtures(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`conftests`: every conftest.py; `matches`: fixtures named like `name` with where they are defined."""
    name = values.get("name", "")
    conftests: list[str] = []
    defined: dict[str, str] = {}
    for path in repo_files(root):
        rel = path.relative_to(root).as_posix()
        if path.name == "conftest.py":
            conftests.append(rel)
        text = _text(root, path)
        if "pytest.fixture" not in text:
            continue
        for m in _FIXTURE.finditer(text):
            alias = re.search(r"name\s*=\s*['\"](\w+)['\"]", m.group("args"))
            fixture = alias.group(1) if alias else m.group("func")
            defined.setdefault(fixture, _where(root, path, text.count("\n", 0, m.start()) + 1))
    close = difflib.get_close_matches(name, list(defined), n=_MAX_LISTED, cutoff=0.5)
    close += [f for f in defined if f not in close and (name in f or f in name)]
    return {
        "conftests": conftests[:10],
        "matches": [{"name": f, "where": defined[f]} for f in close[:_MAX_LISTED]],
    }


def _imports(tree: ast.Module, module: str, is_pkg: bool) -> list[str]:
    """Module-level imports (not those inside functions), as absolute dotted names."""
    out: list[str] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1] if node.level > 1 else pkg
                base = ".".join([*pkg, base] if base else pkg)
            out += [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.If | ast.Try):
            stack += [
                *node.body,
                *getattr(node, "orelse", []),
                *[s for h in getattr(node, "handlers", []) for s in h.body],
            ]
    return out


def import_cycle(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`cycle`: repository modules forming an import cycle through `module` (first and last the same)."""
    module = values.get("module", "")
    modules = _modules(root)
    graph: dict[str, list[str]] = {}
    for name, path in modules.items():
        try:
            tree = ast.parse(_text(root, path))
        except SyntaxError:
            continue
        targets: list[str] = []
        for imp in _imports(tree, name, path.name == "__init__.py"):
            while imp and imp not in modules:
                imp = imp.rpartition(".")[0]
            if imp and imp != name and imp not in targets:
                targets.append(imp)
        graph[name] = targets
    # Breadth-first from the module back to itself: the shortest cycle through it.
    parents: dict[str, str] = {}
    queue = list(graph.get(module, []))
    for n in queue:
        parents.setdefault(n, module)
    while queue:
        node = queue.pop(0)
        if node == module:
            path = [module]
            cur = parents[module]
            while cur != module:
                path.append(cur)
                cur = parents[cur]
            return {"cycle": [module, *reversed(path[1:]), module]}
        for nxt in graph.get(node, []):
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return {"cycle": []}


# --- tables, traces, files -----------------------------------------------------------------------------------


def command_package(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    return {"package": tables.get("commands", {}).get(values.get("command", ""))}


def pytest_plugin(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`plugin`: the plugin providing an option named in the usage error (longest matching prefix wins)."""
    error = values.get("error", "")
    table = tables.get("pytest_plugins", {})
    for token in error.replace(",", " ").split():
        for option in sorted(table, key=len, reverse=True):
            if (
                token == option
                or token.startswith(option + "=")
                or (option.startswith("--") and token.startswith(option))
            ):
                return {"plugin": table[option], "option": token}
    return {"plugin": None}


_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)|^(?P<file2>\S+\.py):(?P<line2>\d+): in (?P<func2>\S+)',
    re.M,
)


def recursion(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`frames`: the traceback frames that repeat most, as `func (file:line) xN`."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for m in _FRAME.finditer(output):
        file, line, func = (
            (m.group("file"), m.group("line"), m.group("func"))
            if m.group("file")
            else (m.group("file2"), m.group("line2"), m.group("func2"))
        )
        counts[(relative(file, root), line, func)] += 1
    return {
        "frames": [
            f"{func} ({file}:{line}) x{n}" for (file, line, func), n in counts.most_common(3) if n >= 3
        ]
    }


def snippet(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`snippet`: the lines around `line` of `file`, whitespace made visible, the error line marked."""
    lines = _text(root, root / values.get("file", "")).splitlines()
    try:
        at = int(values.get("line", 0))
    except ValueError:
        at = 0
    out = []
    for n in range(max(1, at - 3), min(len(lines), at + 2) + 1):
        text = lines[n - 1]
        indent = len(text) - len(text.lstrip(" \t"))
        shown = text[:indent].replace("\t", "→").replace(" ", "·") + text[indent:]
        out.append(f"{'>' if n == at else ' '}{n:5} | {shown}")
    return {"snippet": "\n".join(out)}


def close_paths(
    values: dict[str, Any], root: Path, output: str, tables: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """`similar`: repository paths close to the missing `path` (whole path, then by file name)."""
    wanted = relative(values.get("path", "").split("::")[0], root)
    paths = [p.relative_to(root).as_posix() for p in repo_files(root, None)]
    similar = difflib.get_close_matches(wanted, paths, n=_MAX_LISTED, cutoff=0.6)
    by_name: dict[str, list[str]] = {}
    for p in paths:
        by_name.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    for name in difflib.get_close_matches(wanted.rsplit("/", 1)[-1], list(by_name), n=3, cutoff=0.6):
        similar += [p for p in by_name[name] if p not in similar]
    return {"similar": similar[:_MAX_LISTED]}


LOOKUPS: dict[str, Lookup] = {
    "fixtures": fixtures, "import_cycle": import_cycle, "definition": definition, "signature": signature,
    "command_package": command_package, "pytest_plugin": pytest_plugin, "recursion": recursion,
    "snippet": snippet, "close_paths": close_paths,
}  # fmt: skip


# --- declared requirements ------------------------------------------------------------------------------------


def local_modules(root: Path, module: str) -> list[str]:
    """Repository files or packages named like the last part of `module`."""
    last = module.split(".")[-1]
    found = []
    for p in repo_files(root):
        if p.stem == last or (p.name == "__init__.py" and p.parent.name == last):
            found.append(p.relative_to(root).as_posix())
    return found[:3]
