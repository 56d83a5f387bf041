"""What `devloop eval` and `devloop sweep` show: a progress bar over the verdicts on disk, the summary
table, and the warnings a reader must not miss (agent errors, missing repositories)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devloop.eval.engine import Progress as RunProgress
from devloop.eval.store import Report, RunStore
from devloop.eval.verdict import Category
from devloop.stats.formatting import interval_text

_FAILED = frozenset(Category) - {Category.RESOLVED, Category.UNRESOLVED, Category.EMPTY_PATCH}


class EvalProgress:
    """A progress bar over a run's instances, counting the verdicts on disk (a resumed run starts at
    what it already has); a no-op when disabled. Give `update` to run_protocol as `on_progress`."""

    def __init__(self, label: str, total: int, *, enabled: bool = True, console: Console | None = None):
        self._progress = Progress(
            TextColumn(f"[bold]{escape(label)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[resolved]} resolved[/] [yellow]{task.fields[unresolved]} unresolved[/]"
                       " [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )  # fmt: skip
        self._task = self._progress.add_task("eval", total=total, resolved=0, unresolved=0, failed=0)

    def __enter__(self) -> EvalProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self._progress.__exit__(exc_type, exc, tb)

    def update(self, state: RunProgress) -> None:
        counts = state.counts
        self._progress.update(
            self._task, total=state.total, completed=state.done, resolved=counts.get(Category.RESOLVED, 0),
            unresolved=counts.get(Category.UNRESOLVED, 0) + counts.get(Category.EMPTY_PATCH, 0),
            failed=sum(counts.get(c, 0) for c in _FAILED),
        )  # fmt: skip


def summary_table(report: Report) -> Table:
    """The end-of-run table: one row per category with counts and the resolve rate."""
    table = Table(title=f"devloop eval · {escape(report.run_id)}", show_footer=False)
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


def warnings_for(report: Report, store: RunStore, mirrors: object | None) -> list[str]:
    """One line per thing the summary must say: agent errors (with the first cause), and each
    repository missing from --mirrors with the command that gets it."""
    lines = []
    if report.agent_error_ids:
        first = store.read_verdict(report.agent_error_ids[0])
        cause = first.message if first else "?"
        lines.append(
            f"{report.agent_error} of {report.total} instances are agent_error: the agent's model server or "
            f"runtime failed, so these are not the model's answers (first: {cause}); the same --run-id re-runs them"
        )
    missing: dict[str, list[str]] = {}
    for iid in report.error_ids:
        verdict = store.read_verdict(iid)
        if verdict is not None and isinstance(repo := verdict.extra.get("missing_repo"), str):
            missing.setdefault(repo, []).append(iid)
    for repo, ids in sorted(missing.items()):
        where = (
            f"{mirrors}/{repo.replace('/', '__')}" if mirrors else "a local clone (the record's repo_path)"
        )
        lines.append(
            f"repository {repo} is missing ({len(ids)} instance(s), e.g. {ids[0]}): get it with "
            f"`git clone --mirror https://github.com/{repo} {where}`"
        )
    return lines
