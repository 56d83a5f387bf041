"""One real oracle eval of two builtin tasks, shared by every dataset test (read-only: copy to tamper)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

IDS = "devloop__confetti-1,devloop__csvlite-1"


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    proc = subprocess.run(
        [sys.executable, "-m", "devloop",
        "eval", "--suite", "builtin", "--model", "oracle", "--instances", IDS,
        "--output", str(out), "--run-id", "oracle", "--cache-dir", str(out / "cache")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "oracle"
