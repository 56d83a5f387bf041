"""`devloop compare`'s half that touches files and the terminal: load two runs, compare, print the tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rich.console import Console
from rich.table import Table

from devloop.reports.runs import RunReport, RunSource, load_run
from devloop.stats.compare import Comparison, compare_outcomes
from devloop.stats.formatting import methods_note
from devloop.stats.intervals import DEFAULT_RESAMPLES

# How many task ids per cell the rendered table lists before eliding.
_IDS_SHOWN = 8


@dataclass(frozen=True, kw_only=True)
class RunComparison(Comparison):
    """A Comparison that knows the runs it came from (their names and report paths)."""

    run_a: RunReport
    run_b: RunReport

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for side, run in (("a", self.run_a), ("b", self.run_b)):
            row = data[side]
            data[side] = {
                "label": row.pop("label"),
                "name": run.name,
                "path": str(run.path) if run.path is not None else None,
                **row,
            }
        return data

    def render(self, console: Console | None = None) -> None:
        """Print the per-run table, the shared-task outcome table, and the verdict."""
        console = console or Console()
        a, b = self.label_a, self.label_b
        runs = Table(title=f"{a} vs {b}", title_justify="left")
        runs.add_column("")
        runs.add_column(a)
        runs.add_column(b)
        runs.add_row("run", _where(self.run_a), _where(self.run_b))
        runs.add_row("tasks ran", str(len(self.run_a.ran)), str(len(self.run_b.ran)))
        runs.add_row("ran only here", str(self.only_ran_a), str(self.only_ran_b))
        runs.add_row(
            "resolved (shared)",
            f"{self.both + self.a_only}/{self.shared}",
            f"{self.both + self.b_only}/{self.shared}",
        )
        label = methods_note([self.rate_a, self.rate_b], self.conf)
        runs.add_row(f"resolve rate (shared, {label})", self.rate_a.short(), self.rate_b.short())
        console.print(runs)

        outcomes = Table(title=f"Outcomes on {self.shared} shared tasks", title_justify="left")
        outcomes.add_column("outcome")
        outcomes.add_column("tasks", justify="right")
        outcomes.add_column("ids")
        outcomes.add_row("both resolve", str(self.both), "")
        outcomes.add_row(f"only {a} resolves", str(self.a_only), _ids(self.a_only_ids))
        outcomes.add_row(f"only {b} resolves", str(self.b_only), _ids(self.b_only_ids))
        outcomes.add_row("neither resolves", str(self.neither), "")
        console.print(outcomes)
        for note in self.notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        console.print(self.verdict(), markup=False, highlight=False)


def compare(
    run_a: RunSource,
    run_b: RunSource,
    *,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
    conf: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RunComparison:
    """Compare run B against run A on the tasks both ran.

    Each run is a run directory holding report.json, the report.json path, a decoded report, or a
    RunReport. Raises ValueError (one line naming the path and field) for a missing or invalid report.
    """
    # A decoded report has no path to name it by, so it takes its label.
    ra = load_run(run_a, name=label_a if isinstance(run_a, Mapping) else None)
    rb = load_run(run_b, name=label_b if isinstance(run_b, Mapping) else None)
    base = compare_outcomes(
        ra.ran,
        ra.resolved,
        rb.ran,
        rb.resolved,
        label_a=label_a,
        label_b=label_b,
        alpha=alpha,
        conf=conf,
        n_resamples=n_resamples,
        seed=seed,
    )
    return RunComparison(**{f.name: getattr(base, f.name) for f in fields(base)}, run_a=ra, run_b=rb)


def _where(run: RunReport) -> str:
    return str(run.path) if run.path is not None else run.name


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:_IDS_SHOWN])
    return shown + (f", ... (+{len(ids) - _IDS_SHOWN})" if len(ids) > _IDS_SHOWN else "")
