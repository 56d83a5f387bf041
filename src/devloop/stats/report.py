"""The research report over one or more runs: report.json, report.md and plots, every rate with a CI.

Per run: its setting (protocol, temperature, max_iterations), the final resolve rate (Wilson 95% CI),
pass@k / pass^k (bootstrap over tasks) for sampled runs, the per-attempt table for iterative runs, the
best-of figures, and optional iteration-ablation estimates. Across runs: pass@k curves per setting and
resolve rate against max_iterations, one line per temperature.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devloop.harness.store import atomic_write
from devloop.protocols.rundata import RunData
from devloop.protocols.summary import protocol_section, sample_counts
from devloop.stats.summary import pass_at_k_estimate


def setting_label(run: RunData) -> str:
    """A short name of a run's setting, e.g. "samples T=0.4 50 it"."""
    parts = [run.config.name]
    if run.temperature is not None:
        parts.append(f"T={run.temperature:g}")
    if run.max_iterations:
        parts.append(f"{run.max_iterations} it")
    return " ".join(parts)


def headline(run: RunData, section: dict[str, Any]) -> dict[str, Any]:
    """The run's one number with its CI: pass@1 over all samples for sampled runs, else the final rate."""
    if run.config.name in ("samples", "best-of") and run.config.samples > 1:
        est = pass_at_k_estimate(sample_counts(run.task_ids, run.units), 1) if run.task_ids else None
        if est is not None:
            return {"metric": "pass@1", **est.to_dict()}
    return {"metric": "resolve rate", **section["final"]["rate"]}


def run_entry(run: RunData, ablation: list[dict[str, Any]] | None = None, seed: int = 0) -> dict[str, Any]:
    section = protocol_section(run.config, run.task_ids, run.units, run.selections, seed=seed)
    return {
        "label": run.label,
        "path": str(run.root),
        "model": run.model,
        "setting": setting_label(run),
        "temperature": run.temperature,
        "max_iterations": run.max_iterations,
        "headline": headline(run, section),
        **section,
        **({"ablation": ablation} if ablation else {}),
    }


def build_report(runs: Sequence[RunData], ablations: dict[str, list[dict[str, Any]]] | None = None,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The report as a JSON-ready dict (`ablations` by run label)."""
    entries = [run_entry(r, (ablations or {}).get(r.label), seed) for r in runs]
    by_temperature: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if e["max_iterations"]:
            key = "iterative" if e["temperature"] is None else f"T={e['temperature']:g}"
            by_temperature.setdefault(key, []).append(
                {"max_iterations": e["max_iterations"], "run": e["label"], **e["headline"]}
            )
    for points in by_temperature.values():
        points.sort(key=lambda p: p["max_iterations"])
    return {
        "runs": entries,
        "resolve_vs_max_iterations": by_temperature,
        "confidence": 0.95,
        "methods": {"rate": "Wilson score interval", "pass_at_k": "unbiased estimator (Chen et al. 2021), "
                    "percentile bootstrap over tasks (10000 resamples, seeded)",
                    "ablation": "patch after step L from trajectories, graded by the harness: an estimate"},
    }  # fmt: skip


def _pct(rate: dict[str, Any] | None) -> str:
    if not rate:
        return "n/a"
    return f"{100 * rate['value']:.1f}% [{100 * rate['lo']:.1f}, {100 * rate['hi']:.1f}]"


def render_markdown(report: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """report.md: one section per run, then the cross-run table and the plots."""
    lines = ["# devloop report", "", "Rates with 95% confidence intervals: Wilson for a proportion, bootstrap "
             "over tasks for pass@k.", "", "| run | setting | tasks | metric | value [95% CI] |",
             "|---|---|---:|---|---|"]  # fmt: skip
    for e in report["runs"]:
        h = e["headline"]
        lines.append(f"| {e['label']} | {e['setting']} | {e['tasks']} | {h['metric']} | {_pct(h)} |")
    for e in report["runs"]:
        lines += [
            "",
            f"## {e['label']} ({e['setting']})",
            "",
            f"Final: {e['final']['resolved']}/{e['final']['total']} resolved, {_pct(e['final']['rate'])}.",
        ]
        if "attempts" in e:
            lines += ["", "| attempt | temperature | attempted | resolved | empty patch | not finished | "
                      "resolved so far [95% CI] |", "|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
            lines += [f"| {r['attempt']} | {r['temperature']:g} | {r['attempted']} | {r['resolved']} | "
                      f"{r['empty_patch']} | {r['not_finished']} | {r['cumulative_resolved']} · "
                      f"{_pct(r['cumulative_rate'])} |" for r in e["attempts"]]  # fmt: skip
        if "pass_at_k" in e:
            lines += ["", "| k | pass@k [95% CI] | pass^k [95% CI] |", "|---:|---|---|"]
            lines += [
                f"| {r['k']} | {_pct(r['pass_at_k'])} | {_pct(r['pass_hat_k'])} |" for r in e["pass_at_k"]
            ]
        if "best_of" in e:
            b = e["best_of"]
            lines += ["", f"Best-of: selected {_pct(b['selected'])}; any sample resolved "
                      f"{_pct(b['oracle_pass_at_n'])}; selection accuracy {_pct(b['selection_accuracy'])}.",
                      f"Rule: {b['rule']}."]  # fmt: skip
        if "ablation" in e:
            lines += [
                "",
                "Iteration ablation (**estimate** from trajectories; `devloop sweep --max-iterations` "
                "is the exact re-run):",
                "",
                "| max iterations | estimate [95% CI] |",
                "|---:|---|",
            ]
            for r in e["ablation"]:
                unknown = f" ({r['unknown_units']} units unknown)" if r["unknown_units"] else ""
                lines.append(f"| {r['max_iterations']} | {_pct(r['estimate'])}{unknown} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """Write report.json, report.md and the PNG plots into `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pngs: list[str] = []
    if plots:
        from devloop.stats.report_plots import write_plots

        pngs = [p.name for p in write_plots(report, out_dir)]
        written += [out_dir / p for p in pngs]
    atomic_write(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write(out_dir / "report.md", render_markdown(report, pngs))
    return [out_dir / "report.json", out_dir / "report.md", *written]
