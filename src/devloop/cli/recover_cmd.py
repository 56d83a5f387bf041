"""`devloop recover DIR`: the result.json and patch.diff of a run that was killed before writing them.

A separate command rather than `devloop run --resume`: nothing is run again (no model, no workspace,
no --repo); it only writes down what the trajectory already holds, so it is safe on any run directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("recover", no_args_is_help=True)(recover)


def recover(
    run_dir: Annotated[Path, typer.Argument(help="The run directory (holding trajectory.jsonl).")],
) -> None:
    """Write result.json (exit_status "interrupted", "recovered": true) and patch.diff (the patch after the
    last step written) for a run whose process was killed; the step in flight is lost.

    Exit code 0 when the files were written, 2 when there is nothing to recover.
    """
    from rich.console import Console
    from rich.markup import escape

    from devloop.cli.errors import fail
    from devloop.trajectory import last_patch, owner_alive, read_trajectory, recovered_result

    path = run_dir / "trajectory.jsonl"
    if not path.is_file():
        fail(f"{run_dir}: no trajectory.jsonl, not a run directory")
    if (run_dir / "result.json").exists():
        fail(f"{run_dir}: the run ended normally (result.json exists); nothing to recover")
    if (pid := owner_alive(run_dir)) is not None:
        fail(f"{run_dir}: the run is still going (devloop process {pid}); nothing to recover yet")
    try:
        events = list(read_trajectory(path))
    except (ValueError, OSError) as e:
        fail(str(e))
    result = recovered_result(events, run_dir)
    patch_file = run_dir / "patch.diff"
    if not patch_file.exists():  # written at the very end of a run: one that is there is the final patch
        _write(patch_file, last_patch(events))
    _write(run_dir / "result.json", json.dumps(result, indent=2) + "\n")
    lines = patch_file.read_text(encoding="utf-8", errors="replace").count("\n")
    Console(highlight=False, soft_wrap=True).print(
        f"[yellow]{result['exit_status']}[/] after {result['steps']} steps · recovered "
        f"{escape(str(run_dir / 'result.json'))} · patch {lines} lines -> {escape(str(patch_file))}"
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
