"""Rich tables for a protocol run's sections: per-attempt table, pass@k, best-of."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from devloop.stats.formatting import methods_note, rate_text


def pct(rate: dict[str, Any] | None) -> str:
    """A rate dict (RateEstimate.to_dict) as "42.5% (28.5..57.8)"; "n/a" for None."""
    if not rate:
        return "n/a"
    return rate_text(rate, label=False)


def attempts_rich(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Attempts (iterative protocol)", title_justify="left")
    for name in (
        "attempt",
        "temperature",
        "attempted",
        "resolved",
        "empty patch",
        "not finished",
        "resolved so far (95% Wilson CI)",
    ):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            str(r["attempt"]),
            f"{r['temperature']:g}",
            str(r["attempted"]),
            str(r["resolved"]),
            str(r["empty_patch"]),
            str(r["not_finished"]),
            f"{r['cumulative_resolved']} · {pct(r['cumulative_rate'])}",
        )
    return table


def pass_at_k_rich(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title=f"pass@k ({methods_note(r[k] for r in rows for k in ('pass_at_k', 'pass_hat_k'))})",
        title_justify="left",
    )
    for name in ("k", "pass@k", "pass^k"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(str(r["k"]), pct(r["pass_at_k"]), pct(r["pass_hat_k"]))
    return table


def print_protocol(sections: dict[str, Any], console: Console | None = None) -> None:
    """Print the protocol's tables and its final figure."""
    console = console or Console()
    if "attempts" in sections:
        console.print(attempts_rich(sections["attempts"]))
    if "pass_at_k" in sections:
        console.print(pass_at_k_rich(sections["pass_at_k"]))
    if "best_of" in sections:
        b = sections["best_of"]
        console.print(
            f"best-of: selected {pct(b['selected'])}, any sample resolved {pct(b['oracle_pass_at_n'])}, "
            f"selection accuracy {pct(b['selection_accuracy'])}",
            markup=False,
        )
    final = sections["final"]
    console.print(
        f"{sections['protocol']['name']}: resolved {final['resolved']}/{final['total']} = "
        f"{rate_text(final['rate'])}",
        markup=False,
    )
    for line in sections.get("lost_units", []):
        console.print(f"[yellow]left undone (resume with the same --run-id):[/] {line}")
