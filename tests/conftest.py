"""Session-wide hooks: the sandbox escape table, gathered from every pytest-xdist worker."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

ESCAPE_ROWS_ENV = "DEVLOOP_TEST_ESCAPE_ROWS"


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a run without xdist) names the file; workers inherit it through the environment.
    if not hasattr(config, "workerinput") and ESCAPE_ROWS_ENV not in os.environ:
        fd, path = tempfile.mkstemp(prefix="devloop-escapes-", suffix=".jsonl")
        os.close(fd)
        os.environ[ESCAPE_ROWS_ENV] = path
        config.add_cleanup(lambda: Path(path).unlink(missing_ok=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the escape table (attempt, contained, by what), so it shows in any CI log without -s."""
    if hasattr(config, "workerinput"):
        return
    path = Path(os.environ.get(ESCAPE_ROWS_ENV, ""))
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    if not rows:
        return
    rows.sort(key=lambda r: r["attempt"])
    width = max(len(r["attempt"]) for r in rows)
    terminalreporter.section("sandbox escape attempts")
    terminalreporter.write_line(f"{'attempt'.ljust(width)}  contained  by what")
    for r in rows:
        terminalreporter.write_line(
            f"{r['attempt'].ljust(width)}  {('yes' if r['contained'] else 'NO').ljust(9)}  {r['by']}"
        )
    contained = sum(r["contained"] for r in rows)
    terminalreporter.write_line(
        f"{len(rows)} attempts, {contained} contained, {len(rows) - contained} not contained"
    )
