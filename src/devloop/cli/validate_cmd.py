"""`devloop validate`: per instance, the gold patch must resolve and the test patch alone must fail."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devloop.cli import task_options as topt
from devloop.cli.errors import fail

if TYPE_CHECKING:
    from devloop.eval.verdict import Verdict


def _test_log(instance_dir: Path, verdict: Verdict | None) -> str | None:
    """The verdict's test log (devloop's own copy, under the run directory), or None."""
    name = verdict.logs.get("test") if verdict is not None else None
    if not name:
        return None
    try:
        return (instance_dir / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def register(app: typer.Typer) -> None:
    app.command("validate", no_args_is_help=True)(validate)


def validate(
    tasks: Annotated[
        Path, typer.Option("--tasks", help="Task records (.json or .jsonl), official SWE-bench fields.")
    ],
    mirrors: topt.Mirrors = None,
    instances: topt.Instances = None,
    output: Annotated[
        Path, typer.Option("--output", help="Writes OUTPUT/RUN-ID/{gold,empty}/ runs and validation.json.")
    ] = Path("runs"),
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Name of the validation [default: validate-<time>].")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Instances graded in parallel.")] = 1,
    cache_dir: topt.CacheDir = None,
    no_build_cache: topt.NoBuildCache = False,
    no_prefetch: topt.NoPrefetch = False,
    test_timeout: topt.TestTimeout = 1800.0,
    grading: topt.Grading = "swebench4",
) -> None:
    """Grade each instance's gold patch and its test patch alone with the eval engine; write a report.

    Exit 0 when every instance is validated, 1 when some are not, 2 on bad input."""
    from devloop.cli.eval_cmd import _grading_confinement, load_task_list, print_environment_fill
    from devloop.cli.eval_support import run_protocol_cli
    from devloop.eval.protocols import ProtocolConfig
    from devloop.eval.store import RunStore
    from devloop.swebench.grading import RULES
    from devloop.swebench.host import host_summary
    from devloop.swebench.validation import EMPTY, GOLD, judge, predictions, report, shipped_entries

    if grading not in RULES:
        fail(f"--grading: unknown rules {grading!r}; expected one of {', '.join(RULES)}")
    console = Console(highlight=False, soft_wrap=True)
    run_id = run_id or time.strftime("validate-%Y%m%d-%H%M%S")
    if "/" in run_id or run_id in ("", ".", ".."):
        fail(f"--run-id {run_id!r} must be a plain directory name")
    task_list = load_task_list(tasks, None, instances, strict=False, cache_dir=cache_dir, console=console)
    print_environment_fill(task_list, console, mirrors=mirrors, cache_dir=cache_dir)
    confinement = _grading_confinement(None, {}, console)
    root = output / run_id
    for which in (GOLD, EMPTY):
        console.rule(f"{which}: {'the gold patch' if which == GOLD else 'the test patch alone'}")
        run_protocol_cli(task_list, None, ProtocolConfig(), predictions=predictions(task_list, which),
                         confinement=confinement, executor="local", ray_address=None, workers=workers,
                         run_id=which, output=root, cache_dir=cache_dir, mirrors=mirrors,
                         test_timeout=test_timeout, keep_workdirs=False, console=console, grading=grading,
                         resume_flag="--run-id", resume_id=run_id, build_cache=not no_build_cache,
                         prefetch=not no_prefetch)  # fmt: skip
    gold, empty = RunStore(root, GOLD), RunStore(root, EMPTY)
    rows = [
        judge(t, verdict := gold.read_verdict(t.instance_id), empty.read_verdict(t.instance_id),
              _test_log(gold.instance_dir(t.instance_id), verdict))
        for t in task_list
    ]  # fmt: skip
    meta = {"run_id": run_id, "tasks": str(tasks), "grading": grading, "created": time.time(),
            "host": host_summary()}  # fmt: skip
    (root / "validation.json").write_text(json.dumps(report(rows, meta), indent=1) + "\n", encoding="utf-8")
    (root / "validated.json").write_text(json.dumps({"instances": shipped_entries(rows)}, indent=1) + "\n")
    table = Table("instance", "gold", "empty", "env s", "tests s", "result", "reason")
    for r in rows:
        table.add_row(r.instance_id, r.gold or "-", r.empty or "-", f"{r.env_s or 0:.1f}", f"{r.tests_s or 0:.1f}",
                      r.result, escape(r.reason[:80]))  # fmt: skip
    console.print(table)
    done = sum(r.result == "validated" for r in rows)
    console.print(f"{done} of {len(rows)} validated; wrote {escape(str(root / 'validation.json'))}")
    if done != len(rows):
        raise typer.Exit(1)
