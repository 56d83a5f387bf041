"""`devloop report RUN [RUN ...]`: report.md, report.json and plots over runs, every rate with a 95% CI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devloop.cli.errors import fail


def register(app: typer.Typer) -> None:
    app.command("report", no_args_is_help=True)(report_)


def report_(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (from devloop eval or sweep).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write report.md, report.json and the PNGs "
            "\\[default: RUN/analysis for one run, ./devloop-report for more].",
        ),
    ] = None,
    at_iterations: Annotated[
        str | None,
        typer.Option(
            "--at-iterations",
            metavar="L1,L2",
            help="Estimate the result at these max-iterations limits from the "
            "trajectories (the patch after step L), graded by the harness. An estimate; `devloop sweep "
            "--max-iterations` is the exact re-run.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Environment cache for --at-iterations grading \\[default: the user cache dir].",
        ),
    ] = None,
    mirrors: Annotated[
        Path | None, typer.Option("--mirrors", help="Repository mirrors for --at-iterations.")
    ] = None,
    test_timeout: Annotated[
        float, typer.Option("--test-timeout", help="Seconds for one instance's tests.")
    ] = 1800.0,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots.")] = True,
) -> None:
    """Summarise runs: final resolve rate, outcomes, per-attempt table, pass@k and best-of figures, each with
    a 95% CI; plots of the outcomes per run, pass@k curves, resolve rate vs max iterations and attempts, with
    one line for each plot the runs have no data for."""
    from devloop.cli.eval_support import parse_ints
    from devloop.eval.rundata import load_run_data
    from devloop.reports.ablation import ablation
    from devloop.reports.report import build_report, write_report
    from devloop.stats.formatting import rate_text

    loaded = []
    for path in runs:
        try:
            loaded.append(load_run_data(path))
        except ValueError as exc:
            fail(str(exc))
    if len({r.label for r in loaded}) < len(loaded):  # same run ids in different output dirs
        for run in loaded:
            run.label = f"{run.root.parent.name}/{run.label}"
    ablations = {}
    if at_iterations:
        limits = parse_ints(at_iterations, "--at-iterations")
        for run in loaded:
            if not run.tasks():
                fail(f"{run.root}: no tasks.jsonl, so its patches cannot be re-graded for --at-iterations")
            ablations[run.label] = ablation(
                run, limits, cache_dir=cache_dir, mirrors=mirrors, test_timeout=test_timeout
            )
    report = build_report(loaded, ablations)
    target = out or (loaded[0].root / "analysis" if len(loaded) == 1 else Path("devloop-report"))
    written = write_report(report, target, plots=plots)
    console = Console(highlight=False, soft_wrap=True)  # a line is never broken for width
    for e in report["runs"]:
        h = e["headline"]
        console.print(f"{e['label']} ({e['setting']}): {h['metric']} {rate_text(h, n=True)}", markup=False)
    console.print("wrote " + ", ".join(str(p) for p in written), markup=False)
    if plots:
        from devloop.reports.plots import missing_plots

        for gap in missing_plots(written):
            console.print(gap, markup=False)
