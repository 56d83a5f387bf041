"""report.md: the report dict (devloop.reports.report) as markdown a person reads.

Every interval is written by devloop.stats.formatting, naming its level and method (Wilson for a
proportion, bootstrap over tasks for an average of per-task values) in the cell or its column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devloop.stats.formatting import method_name, rate_text


def _methods(*rates: dict[str, Any] | None) -> str:
    names = dict.fromkeys(method_name(r["method"]) for r in rates if r and r.get("method"))
    return " / ".join(names) or "n/a"


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in counts.items()) or "no tasks"


def _run_section(e: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## {e['label']} ({e['setting']})",
        "",
        f"Final: {e['final']['resolved']}/{e['final']['total']} resolved, {rate_text(e['final']['rate'])}.",
    ]
    if e.get("outcomes"):
        lines += [
            "",
            f"Outcome of each task's prediction (the attempt or sample chosen): {_outcomes(e['outcomes'])}.",
        ]
    if "attempts" in e:
        lines += [
            "",
            "| attempt | temperature | attempted | resolved | empty patch | not finished | "
            "resolved so far (95% Wilson CI) |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['attempt']} | {r['temperature']:g} | {r['attempted']} | {r['resolved']} | "
            f"{r['empty_patch']} | {r['not_finished']} | {r['cumulative_resolved']} · "
            f"{rate_text(r['cumulative_rate'], label=False)} |"
            for r in e["attempts"]
        ]
    if "pass_at_k" in e:
        lines += ["", "| k | pass@k (95% CI) | pass^k (95% CI) | interval |", "|---:|---|---|---|"]
        lines += [
            f"| {r['k']} | {rate_text(r['pass_at_k'], label=False)} | {rate_text(r['pass_hat_k'], label=False)} "
            f"| {_methods(r['pass_at_k'], r['pass_hat_k'])} |"
            for r in e["pass_at_k"]
        ]
    if "best_of" in e:
        b = e["best_of"]
        lines += [
            "",
            f"Best-of: selected {rate_text(b['selected'])}; any sample resolved "
            f"{rate_text(b['oracle_pass_at_n'])}; selection accuracy {rate_text(b['selection_accuracy'])}.",
            f"Rule: {b['rule']}.",
        ]
    if "ablation" in e:
        lines += [
            "",
            "Iteration ablation (**estimate** from trajectories; `devloop sweep --max-iterations` "
            "is the exact re-run):",
            "",
            "| max iterations | estimate |",
            "|---:|---|",
        ]
        for r in e["ablation"]:
            unknown = f" ({r['unknown_units']} units unknown)" if r["unknown_units"] else ""
            lines.append(f"| {r['max_iterations']} | {rate_text(r['estimate'])}{unknown} |")
    return lines


def render_markdown(report: dict[str, Any], plots: Sequence[str] = (), gaps: Sequence[str] = ()) -> str:
    """report.md: the headline table, one section per run, then the plots and why any are missing."""
    lines = [
        "# devloop report",
        "",
        "Every rate comes with its 95% confidence interval, named with its method: Wilson for a proportion "
        "(and for pass@k when every task's value is 0 or 1), percentile bootstrap over tasks for other "
        "averages of per-task values.",
        "",
        "| run | setting | tasks | metric | value |",
        "|---|---|---:|---|---|",
    ]
    for e in report["runs"]:
        h = e["headline"]
        lines.append(f"| {e['label']} | {e['setting']} | {e['tasks']} | {h['metric']} | {rate_text(h)} |")
    for e in report["runs"]:
        lines += _run_section(e)
    if plots or gaps:
        lines += ["", "## Plots", ""]
        for p in plots:
            lines += [f"![{p}]({p})", ""]
        lines += [f"- {gap}" for gap in gaps]
    return "\n".join(lines) + "\n"
