"""`devloop sweep` gives official records their environments as `devloop eval` does, before the model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from devloop.cli import app


def test_sweep_fills_official_environments_from_the_mirrors(tmp_path: Path) -> None:
    record = {"instance_id": "django__django-11099", "repo": "django/django", "version": "3.0",
              "base_commit": "a" * 40, "environment_setup_commit": "b" * 40, "problem_statement": "x",
              "FAIL_TO_PASS": []}  # fmt: skip
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([record]))
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    done = CliRunner().invoke(app, ["sweep", "--tasks", str(tasks), "--mirrors", str(mirrors), "--model",
                                    "nosuch:::x", "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    # The fill reads the requirements file from --mirrors (absent here), then the bad model stops the run.
    assert done.exit_code == 2
    assert "0 task(s) got an environment from the official SWE-bench table; 1 cannot" in done.output
    assert f"no repository for django/django: looked in {mirrors}/django__django" in done.output
    assert "unknown model 'nosuch:::x'" in done.output
