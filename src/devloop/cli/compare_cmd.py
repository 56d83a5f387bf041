"""`devloop compare RUN_A RUN_B`: is B better than A? Counts, McNemar's exact test, the difference's CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from devloop.cli.errors import fail


def register(app: typer.Typer) -> None:
    app.command("compare", no_args_is_help=True)(compare_)


def compare_(
    run_a: Annotated[Path, typer.Argument(help="Run directory (or its report.json) of A, the baseline.")],
    run_b: Annotated[Path, typer.Argument(help="Run directory (or its report.json) of B.")],
    label_a: Annotated[
        str | None, typer.Option("--label-a", help="Name for A \\[default: its directory].")
    ] = None,
    label_b: Annotated[
        str | None, typer.Option("--label-b", help="Name for B \\[default: its directory].")
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the test.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the paired bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Compare run B with run A on the tasks both ran: who resolves what, McNemar's exact p-value, and B's
    resolve rate minus A's with a paired-bootstrap 95% CI."""
    from devloop.reports import compare

    def name(path: Path) -> str:
        path = path.resolve()
        return path.parent.name if path.name == "report.json" else path.name

    la, lb = label_a or name(run_a), label_b or name(run_b)
    if la == lb:
        la, lb = f"A:{la}", f"B:{lb}"
    try:
        result = compare(run_a, run_b, label_a=la, label_b=lb, alpha=alpha, seed=seed)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        result.render(Console(highlight=False))
