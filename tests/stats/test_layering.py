"""devloop.stats is pure math: it imports nothing from the rest of devloop, so every layer can use it."""

from __future__ import annotations

import ast
from pathlib import Path

import devloop.reports
import devloop.stats


def _devloop_imports(package: Path) -> dict[str, set[str]]:
    """{file: the devloop modules it imports (anywhere in the file, lazy imports included)}."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = {n for n in names if n == "devloop" or n.startswith("devloop.")}
    return found


def test_stats_imports_only_itself() -> None:
    imports = _devloop_imports(Path(devloop.stats.__file__).parent)
    assert "compare.py" in imports and "formatting.py" in imports
    outside = {
        f: sorted(n for n in names if not n.startswith("devloop.stats")) for f, names in imports.items()
    }
    assert all(not names for names in outside.values()), outside


def test_reports_never_import_the_cli() -> None:
    imports = _devloop_imports(Path(devloop.reports.__file__).parent)
    assert "report.py" in imports and "plots.py" in imports
    upward = {f: sorted(n for n in names if n.startswith("devloop.cli")) for f, names in imports.items()}
    assert all(not names for names in upward.values()), upward
