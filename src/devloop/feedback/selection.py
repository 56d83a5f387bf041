"""Which tests to run after a step: the ones the agent ran or wrote, and the ones related to changed files.

Related means: a test file named after a changed module (`foo.py` -> `test_foo.py` / `foo_test.py`), a test
file that imports a changed module directly or through other project modules (a cheap regex scan of import
statements, cached per file by mtime and size), and for a changed `conftest.py` every test file below it.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from devloop import safefs
from devloop.types import ToolCall

_SKIP_DIRS = {"node_modules", "site-packages", "__pycache__", "build", "dist", "venv", "env"}
# A module larger than this is not scanned for imports (it is generated or data, not code a test imports).
_MAX_SCAN_BYTES = 4 * 1024 * 1024
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)|import[ \t]+([^\n#;]+))", re.M
)
_PATCH_FILE = re.compile(r"^(?:\+\+\+ b/|--- a/)(.+?)\t?$", re.M)
# pytest options whose value is the next word, so that word is not a test path.
_VALUE_OPTS = {
    "-k",
    "-m",
    "-p",
    "-c",
    "-o",
    "-n",
    "-W",
    "--rootdir",
    "--deselect",
    "--ignore",
    "--tb",
    "--junitxml",
    "--maxfail",
    "--durations",
    "--log-level",
    "--confcutdir",
    "--basetemp",
}


def is_test_file(path: str) -> bool:
    """Whether `path` names a Python test module by pytest's default conventions (or Django's tests.py)."""
    name = PurePosixPath(path).name
    return name.endswith(".py") and (
        name.startswith("test_") or name.endswith("_test.py") or name == "tests.py"
    )


def changed_files(patch: str) -> list[str]:
    """The paths a git diff touches (both sides of a rename, neither of /dev/null)."""
    seen: dict[str, None] = {}
    for m in _PATCH_FILE.finditer(patch):
        seen.setdefault(m.group(1), None)
    return list(seen)


@dataclass
class _Scan:
    key: tuple[int, int]
    imports: frozenset[str]


@dataclass
class ImportIndex:
    """The project's Python modules and what each imports (project modules only), rescanned lazily."""

    root: Path
    _cache: dict[str, _Scan] = field(default_factory=dict)

    def files(self) -> list[str]:
        """Every .py file under the root, relative, skipping hidden, vendored and build directories."""
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
            rel = os.path.relpath(dirpath, self.root)
            out += [
                n if rel == "." else f"{rel}/{n}".replace(os.sep, "/") for n in filenames if n.endswith(".py")
            ]
        return out

    def graph(self, deleted: Iterable[str] = ()) -> tuple[dict[str, str], dict[str, set[str]]]:
        """(module name -> file, file -> files it imports); `deleted` files still count as modules, so
        that their importers can be found."""
        files = self.files()
        modules = {module_name(self.root, f): f for f in [*deleted, *files]}
        edges: dict[str, set[str]] = {}
        for f in files:
            targets: set[str] = set()
            for name in self._imports(f):
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
                    target = modules.get(".".join(parts[:i]))
                    if target is not None and target != f:
                        targets.add(target)
            edges[f] = targets
        return modules, edges

    def _imports(self, rel: str) -> frozenset[str]:
        # Beneath the open root: a file the sandbox turned into a link out of it, or a FIFO, reads as missing.
        try:
            st = safefs.stat_path(self.root, rel)
        except OSError:
            return frozenset()
        key = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(rel)
        if cached is not None and cached.key == key:
            return cached.imports
        try:
            text = safefs.read_text(self.root, rel, max_bytes=_MAX_SCAN_BYTES)
        except OSError:
            text = ""
        scan = _Scan(
            key, frozenset(_scan_imports(text, module_name(self.root, rel), rel.endswith("__init__.py")))
        )
        self._cache[rel] = scan
        return scan.imports


def module_name(root: Path, rel: str) -> str:
    """The dotted module name of a file: its path up to the topmost directory with an __init__.py chain."""
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    # Walk up from the file's directory while each directory is a package.
    depth = len(parts) - 1 if not rel.endswith("__init__.py") else len(parts)
    start = 0
    for i in range(depth, 0, -1):
        if not (root / Path(*parts[:i]) / "__init__.py").exists():
            start = i
            break
    return ".".join(parts[start:])


def _scan_imports(text: str, module: str, is_package: bool) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for m in _IMPORT.finditer(text):
        if m.group(3) is not None:  # import a.b as c, d
            for item in m.group(3).split(","):
                name = item.strip().split(" ")[0].strip("\\ ()")
                if name:
                    found.add(name)
            continue
        base = m.group(1)
        if base.startswith("."):
            dots = len(base) - len(base.lstrip("."))
            anchor = package.split(".") if package else []
            anchor = anchor[: len(anchor) - (dots - 1)] if dots > 1 else anchor
            base = ".".join([*anchor, base.lstrip(".")] if base.lstrip(".") else anchor)
        if not base:
            continue
        found.add(base)
        for item in m.group(2).strip("()").replace("\\\n", " ").split(","):
            name = item.strip().split(" ")[0]
            if name and name != "*":
                found.add(f"{base}.{name}")  # `from pkg import mod` may import a submodule
    return found


@dataclass
class TestSelector:
    """Chooses the tests for the next hook run (pytest node ids or files; for jest, files jest relates)."""

    root: Path
    kind: str = "pytest"  # pytest | jest | command
    scope: str = "related"  # related | all
    agent_tests: dict[str, None] = field(default_factory=dict)
    touched: dict[str, None] = field(default_factory=dict)
    index: ImportIndex = field(init=False)

    def __post_init__(self) -> None:
        self.index = ImportIndex(self.root)

    def note_calls(self, calls: Iterable[ToolCall]) -> None:
        """Remember the tests the agent ran itself in these calls (pytest / unittest commands)."""
        for call in calls:
            command = call.arguments.get("command") if call.name == "execute_bash" else None
            if isinstance(command, str):
                for test in tests_in_command(command, self.root):
                    self.agent_tests.setdefault(test, None)

    def select(self, patch: str) -> list[str] | None:
        """Tests for the workspace as `patch` (the diff against the start) leaves it, given every file
        changed so far in the run: None = the whole suite, [] = nothing to run."""
        if self.scope == "all" or self.kind == "command":
            return None
        # Files changed at any point of the run: an edit undone since still decides what is worth re-testing.
        for f in changed_files(patch):
            if f != "/dev/null":
                self.touched.setdefault(f, None)
        files = list(self.touched)
        if self.kind == "jest":
            existing = [f for f in files if (self.root / f).is_file()]
            return sorted(
                {*existing, *(t for t in self.agent_tests if (self.root / t.split("::")[0]).exists())}
            )
        return self._pytest(files)

    def _pytest(self, files: list[str]) -> list[str]:
        chosen: dict[str, None] = {}
        for test in self.agent_tests:
            if (self.root / test.split("::")[0]).exists():
                chosen.setdefault(test, None)
        existing = [f for f in files if (self.root / f).is_file()]
        for f in existing:
            if is_test_file(f):
                chosen.setdefault(f, None)  # written or changed by the agent
        sources = [f for f in files if f.endswith(".py") and not is_test_file(f)]
        if sources:
            for test in self._related(sources, deleted=[f for f in sources if f not in existing]):
                chosen.setdefault(test, None)
        # A whole file already chosen makes its single node ids redundant.
        whole = {t for t in chosen if "::" not in t}
        return [t for t in chosen if "::" not in t or t.split("::")[0] not in whole]

    def _related(self, sources: list[str], deleted: list[str]) -> list[str]:
        _, edges = self.index.graph(deleted)
        tests = [f for f in edges if is_test_file(f) and f not in deleted]
        found: set[str] = set()
        stems = set()
        for src in sources:
            p = PurePosixPath(src)
            stem = p.parent.name if p.name == "__init__.py" else p.stem
            stems.add(stem)
            if p.name == "conftest.py":
                below = "" if str(p.parent) == "." else f"{p.parent}/"
                found.update(t for t in tests if t.startswith(below))
        found.update(
            t
            for t in tests
            if PurePosixPath(t).stem in {f"test_{s}" for s in stems} | {f"{s}_test" for s in stems}
        )
        importers: dict[str, set[str]] = {}
        for f, targets in edges.items():
            for t in targets:
                importers.setdefault(t, set()).add(f)
        frontier, seen = list(sources), set(sources)
        while frontier:  # every file that imports a changed module, directly or through others
            for f in importers.get(frontier.pop(), ()):
                if f not in seen:
                    seen.add(f)
                    frontier.append(f)
        found.update(f for f in seen if is_test_file(f) and f not in deleted)
        return sorted(found)


def tests_in_command(command: str, root: Path) -> list[str]:
    """Test paths / node ids named in the pytest, `python -m unittest` or `python tests/x.py` commands
    of a shell command line (relative to `root`, existing files only)."""
    out: list[str] = []
    for segment in re.split(r"&&|\|\||[;|\n]", command):
        try:
            words = shlex.split(segment)
        except ValueError:
            continue
        out += _tests_in_words(words, root)
    return out


def _tests_in_words(words: list[str], root: Path) -> list[str]:
    names = [PurePosixPath(w).name for w in words]
    start, unittest = None, False
    for i, name in enumerate(names):
        if name in ("pytest", "py.test"):
            start = i + 1
            break
        if name.startswith("python") and i + 2 < len(words) + 1 and words[i + 1 : i + 3] == ["-m", "pytest"]:
            start = i + 3
            break
        if name.startswith("python") and words[i + 1 : i + 3] == ["-m", "unittest"]:
            start, unittest = i + 3, True
            break
        if name.startswith("python") and i + 1 < len(words) and is_test_file(words[i + 1]):
            start = i + 1
            break
    if start is None:
        return []
    out: list[str] = []
    skip = False
    for word in words[start:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _VALUE_OPTS
            continue
        if unittest and not word.endswith(".py") and "/" not in word:
            word = _unittest_file(word, root) or word
        rel = _relative(word, root)
        if rel is not None:
            out.append(rel)
    return out


def _unittest_file(dotted: str, root: Path) -> str | None:
    """tests.test_x.Case.test_y -> tests/test_x.py (the longest dotted prefix that is a file)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        candidate = "/".join(parts[:i]) + ".py"
        if (root / candidate).is_file():
            return candidate
    return None


def _relative(word: str, root: Path) -> str | None:
    path, sep, rest = word.partition("::")
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(root)
        except ValueError:
            return None
    if not (root / p).exists() or str(p) == ".":
        return None
    return p.as_posix() + (sep + rest if sep else "")
