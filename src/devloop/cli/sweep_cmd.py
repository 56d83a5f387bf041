"""`devloop sweep`: the samples protocol over a grid of temperatures x max-iterations, then the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devloop.cli import options as o
from devloop.cli import task_options as topt
from devloop.cli.errors import fail

GRID = "Grid"


def register(app: typer.Typer) -> None:
    app.command("sweep", no_args_is_help=True)(sweep_)


def cell_id(temperature: float, max_iterations: int) -> str:
    """The run id of one grid cell, e.g. "t0.4-i50"."""
    return f"t{temperature:g}-i{max_iterations}"


def sweep_(
    model: Annotated[str, typer.Option("--model", help="PROVIDER/NAME as for `devloop run`, or 'oracle'.")],
    tasks: topt.Tasks = None,
    suite: topt.Suite = None,
    instances: topt.Instances = None,
    mirrors: topt.Mirrors = None,
    temperatures: Annotated[
        str,
        typer.Option("--temperatures", help="Temperatures to sweep, comma-separated.", rich_help_panel=GRID),
    ] = "0",
    max_iterations: Annotated[
        str | None,
        typer.Option(
            "--max-iterations",
            help="Max-iterations limits to sweep, comma-separated \\[default: the setting's].",
            rich_help_panel=GRID,
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            "--samples",
            min=1,
            help="Attempts per task and setting (pass@k up to k = samples).",
            rich_help_panel=GRID,
        ),
    ] = 1,
    sweep_id: Annotated[
        str,
        typer.Option(
            "--sweep-id",
            help="Directory of the sweep under --output; the same id reuses every unit already done.",
        ),
    ] = "sweep",
    output: Annotated[
        Path,
        typer.Option("--output", help="Writes OUTPUT/SWEEP-ID/<cell>/ runs and OUTPUT/SWEEP-ID/report/."),
    ] = Path("runs"),
    workers: Annotated[int, typer.Option("--workers", min=1, help="Attempts run in parallel.")] = 1,
    executor: topt.Executor = "local",
    ray_address: topt.RayAddress = None,
    cache_dir: topt.CacheDir = None,
    no_build_cache: topt.NoBuildCache = False,
    test_timeout: topt.TestTimeout = 1800.0,
    base_url: o.BaseUrl = None,
    api_key_env: o.ApiKeyEnv = None,
    tool_format: o.ToolFormat = None,
    sandbox: o.Sandbox = None,
) -> None:
    """Run `--samples` attempts per task at every (temperature, max-iterations) setting, reusing units already
    done, and report resolve rate (pass@1) and pass@k for each setting with 95% CIs."""
    from devloop.cli.eval_cmd import _solver, load_task_list, print_environment_fill
    from devloop.cli.eval_support import parse_floats, parse_ints, run_protocol_cli
    from devloop.eval.protocols import ProtocolConfig
    from devloop.eval.rundata import load_run_data
    from devloop.reports.report import build_report, write_report

    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    if not sweep_id or "/" in sweep_id or sweep_id in (".", ".."):
        fail(f"--sweep-id {sweep_id!r} must be a plain directory name")
    temps = parse_floats(temperatures, "--temperatures")
    if any(not 0.0 <= t <= 2.0 for t in temps):
        fail(f"--temperatures must each be between 0 and 2, got {temperatures}")
    task_list = load_task_list(tasks, suite, instances, strict=False, cache_dir=cache_dir, console=console)
    print_environment_fill(task_list, console, mirrors=mirrors, cache_dir=cache_dir)
    base = _solver(model, o.agent_overrides(base_url=base_url, api_key_env=api_key_env, tool_format=tool_format,
                                            sandbox=sandbox)).settings  # fmt: skip
    limits = parse_ints(max_iterations, "--max-iterations") if max_iterations else [base.max_iterations]
    root = output / sweep_id
    cells = []
    for limit in limits:
        for temp in temps:
            run_id = cell_id(temp, limit)
            console.rule(f"{run_id}: temperature {temp:g}, max iterations {limit}, {samples} sample(s)")
            settings = base.model_copy(update={"temperature": temp, "max_iterations": limit})
            config = ProtocolConfig(name="samples", samples=samples, temperature=temp)
            run_protocol_cli(task_list, settings, config, executor=executor, ray_address=ray_address,
                             workers=workers, run_id=run_id, output=root, cache_dir=cache_dir, mirrors=mirrors,
                             test_timeout=test_timeout, keep_workdirs=False, console=console,
                             resume_flag="--sweep-id", resume_id=sweep_id,
                             build_cache=not no_build_cache)  # fmt: skip
            cells.append(root / run_id)
    report = build_report([load_run_data(c) for c in cells])
    written = write_report(report, root / "report")
    console.print("wrote " + ", ".join(str(p) for p in written))
