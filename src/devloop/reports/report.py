"""The research report over one or more runs: report.json, report.md and plots, every rate with a CI.

Per run: its setting (protocol, temperature, max_iterations), the final resolve rate (Wilson 95% CI), the
outcome of each task's chosen attempt, pass@k / pass^k for sampled runs, the per-attempt table for
iterative runs, the best-of figures, and optional iteration-ablation estimates. Across runs: pass@k curves
per setting and resolve rate against max_iterations, one line per temperature.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devloop.eval.rundata import RunData
from devloop.eval.sections import protocol_section, sample_counts
from devloop.eval.store import atomic_write
from devloop.reports.markdown import render_markdown
from devloop.stats.summary import pass_at_k_estimate

# Outcome categories in the order a reader expects them; any other category follows, by name.
OUTCOME_ORDER = (
    "resolved",
    "unresolved",
    "empty_patch",
    "agent_error",
    "patch_apply_failed",
    "env_error",
    "timeout",
    "error",
    "no_prediction",
)

METHODS = {
    "rate": "Wilson score interval",
    "pass_at_k": "unbiased estimator (Chen et al. 2021); Wilson score interval where every task's value is "
    "0 or 1 (e.g. pass@1 with one sample), else percentile bootstrap over tasks (10000 resamples, "
    "seeded); each estimate's `method` field names the one used",
    "ablation": "patch after step L from trajectories, graded by the harness: an estimate",
}


def setting_label(run: RunData) -> str:
    """A short name of a run's setting, e.g. "samples T=0.4 50 it"."""
    parts: list[str] = [run.config.name]
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


def outcomes(run: RunData, chosen: dict[str, int]) -> dict[str, int]:
    """How many tasks ended in each verdict category, counting each task's chosen attempt."""
    counts: Counter[str] = Counter()
    for iid in run.task_ids:
        unit = run.units.get(iid, {}).get(chosen[iid]) if iid in chosen else None
        counts[str(unit.verdict.category) if unit is not None else "no_prediction"] += 1
    order = {name: i for i, name in enumerate(OUTCOME_ORDER)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


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
        "outcomes": outcomes(run, section["final"]["chosen_unit"]),
        **section,
        **({"ablation": ablation} if ablation else {}),
    }


def build_report(
    runs: Sequence[RunData], ablations: dict[str, list[dict[str, Any]]] | None = None, seed: int = 0
) -> dict[str, Any]:
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
        "methods": METHODS,
    }


def write_report(report: dict[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """Write report.json, report.md and the PNG plots into `out_dir`; returns the files written.

    Plots the report has no data for are not drawn; report.md says why (so does `plot_gaps`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    gaps: list[str] = []
    if plots:
        from devloop.reports.plots import write_plots

        pngs, gaps = write_plots(report, out_dir)
    atomic_write(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write(out_dir / "report.md", render_markdown(report, [p.name for p in pngs], gaps))
    return [out_dir / "report.json", out_dir / "report.md", *pngs]
