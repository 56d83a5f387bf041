"""The package's import graph runs one way, from the CLI down to pure helpers, so each layer can be
used (and tested) without the ones above it. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import devloop

PACKAGE = Path(devloop.__file__).parent

# Lowest first. A module may import its own layer and the ones below it, never one above.
LAYERS: list[set[str]] = [
    {"types", "safefs", "stats", "parse", "prompts", "suite"},
    {"runtime", "tasks", "models", "tools", "policy", "retrieval"},
    {"formats"},
    {"workspace", "trajectory", "hooks", "feedback", "agent", "condense", "complete"},
    {"config", "session_settings"},
    {"session", "repoenv", "eval", "swebench"},
    {"chat", "dataset"},
    {"reports", "review"},
    {"gate"},
    {"cli", "demo", "__main__"},
]


def _layer(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"devloop.{name} belongs to no layer: add it to LAYERS")


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "devloop" or len(parts) < 2 or parts[1].startswith("__"):
        return None  # devloop itself (its __version__), or not devloop
    return parts[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "devloop":
                found.update(f"devloop.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _own_top(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_every_import_points_down_the_layers() -> None:
    upward: list[str] = []
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if "builtin" not in p.relative_to(PACKAGE).parts]
    assert len(files) > 100
    for path in files:
        own = _own_top(path)
        if own == "__init__":
            continue
        for module in sorted(_imports(path)):
            top = _top(module)
            if top is not None and top != own and _layer(top) > _layer(own):
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not upward, "\n".join(upward)


def test_every_subpackage_has_a_layer() -> None:
    names = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    for name in names - {"__init__"}:
        _layer(name)
