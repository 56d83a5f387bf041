"""devloop.eval sits below the CLI and the reports: it imports neither (lazy imports included), so the
engine, store and protocols can be driven from code, tests or a UI without a terminal."""

from __future__ import annotations

import ast
from pathlib import Path

import devloop.eval


def test_eval_never_imports_the_cli_or_the_reports() -> None:
    upward: dict[str, list[str]] = {}
    for path in sorted(Path(devloop.eval.__file__).parent.rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        upward[path.name] = sorted(
            n for n in names if n.startswith(("devloop.cli", "devloop.reports", "rich"))
        )
    assert "engine.py" in upward and "store.py" in upward
    assert all(not names for names in upward.values()), upward
