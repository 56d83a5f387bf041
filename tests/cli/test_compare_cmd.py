"""`devloop compare`: rich output and --json, one-line errors for bad runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cli_inprocess import run_devloop


def _run(root: Path, name: str, resolved: list[str], unresolved: list[str]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"resolved_ids": resolved, "unresolved_ids": unresolved,
                                                 "empty_patch_ids": [], "error_ids": []}))  # fmt: skip
    return run


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return run_devloop(args, env={**os.environ, "COLUMNS": "200"})


def test_compare_json_and_table(tmp_path: Path) -> None:
    tasks = [f"t{i}" for i in range(12)]
    a = _run(tmp_path, "a", tasks[:3], tasks[3:])
    b = _run(tmp_path, "b", tasks[:10], tasks[10:])
    proc = devloop("compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["both"], data["a_only"], data["b_only"], data["neither"]) == (3, 0, 7, 2)
    assert abs(data["p_value"] - 2 / 2**7) < 1e-12 and data["significant"]
    assert data["diff_ci"][0] > 0
    table = devloop("compare", str(a), str(b))
    assert table.returncode == 0 and "McNemar exact" in table.stdout and "only b resolves" in table.stdout


def test_compare_names_a_missing_report(tmp_path: Path) -> None:
    proc = devloop("compare", str(tmp_path / "nope"), str(tmp_path))
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
