"""Rich progress bar with live resolved/failed counts, and the summary table printed at the end."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devloop.harness.store import Report
from devloop.harness.verdict import Category, Verdict
from devloop.stats.formatting import interval_text


class EvalProgress:
    """A progress bar over the pending instances; a no-op when disabled."""

    def __init__(self, total: int, *, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled and total > 0
        self.counts = {"resolved": 0, "unresolved": 0, "failed": 0}
        self._progress = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[resolved]} resolved[/] [yellow]{task.fields[unresolved]} unresolved[/]"
                       " [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            console=console,
            disable=not self.enabled,
        )  # fmt: skip
        self._task = self._progress.add_task("eval", total=total, **self.counts)

    def __enter__(self) -> EvalProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._progress.__exit__(exc_type, exc, tb)

    def advance(self, verdict: Verdict) -> None:
        """Count one finished instance."""
        if verdict.category == Category.RESOLVED:
            self.counts["resolved"] += 1
        elif verdict.category in (Category.UNRESOLVED, Category.EMPTY_PATCH):
            self.counts["unresolved"] += 1
        else:
            self.counts["failed"] += 1
        self._progress.update(self._task, advance=1, **self.counts)


def summary_table(report: Report) -> Table:
    """The end-of-run table: one row per category with counts and the resolve rate."""
    table = Table(title=f"devloop eval · {report.run_id}", show_footer=False)
    table.add_column("outcome")
    table.add_column("instances", justify="right")
    styles = {"resolved": "green", "unresolved": "yellow", "empty_patch": "yellow"}
    for category, count in report.categories.items():
        if count:
            table.add_row(f"[{styles.get(category, 'red')}]{category}[/]", str(count))
    if report.incomplete_ids:
        table.add_row("[dim]incomplete[/]", str(len(report.incomplete_ids)))
    table.add_section()
    table.add_row("[bold]total", str(report.total))
    lo, hi = report.resolve_rate_ci
    table.add_row(
        "[bold]resolve rate", interval_text(report.resolve_rate, lo, hi, conf=0.95, method="wilson")
    )
    return table


def print_summary(report: Report, console: Console | None = None) -> None:
    """Print the summary table."""
    (console or Console()).print(summary_table(report))
