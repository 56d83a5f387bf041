"""PNG plots of a report (matplotlib, Agg backend): pass@k curves, resolve rate vs max iterations,
per-attempt bars. Every rate is drawn with its 95% CI (band or error bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pass_at_k_plot(report: dict[str, Any], path: Path) -> Path | None:
    """pass@k against k for each sampled run, with its bootstrap CI as a band."""
    runs = [e for e in report["runs"] if len(e.get("pass_at_k", [])) > 1]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for e in runs:
        rows = [r for r in e["pass_at_k"] if r["pass_at_k"]]
        ks = [r["k"] for r in rows]
        ax.plot(
            ks,
            [100 * r["pass_at_k"]["value"] for r in rows],
            marker="o",
            label=f"{e['label']} ({e['setting']})",
        )
        ax.fill_between(ks, [100 * r["pass_at_k"]["lo"] for r in rows], [100 * r["pass_at_k"]["hi"] for r in rows],
                        alpha=0.2)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({r["k"] for e in runs for r in e["pass_at_k"]}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set(xlabel="k (samples drawn)", ylabel="pass@k (%)", ylim=(0, 104),
           title="pass@k by setting (bands: 95% bootstrap CI over tasks)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def iterations_plot(report: dict[str, Any], path: Path) -> Path | None:
    """Resolve rate (or pass@1) against max_iterations, one line per temperature, plus ablation estimates."""
    series = report["resolve_vs_max_iterations"]
    estimates = [(e, r) for e in report["runs"] for r in e.get("ablation", []) if r["estimate"]]
    if not any(len(points) > 1 for points in series.values()) and not estimates:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, points in series.items():
        xs = [p["max_iterations"] for p in points]
        ys = [100 * p["value"] for p in points]
        err = [[y - 100 * p["lo"] for y, p in zip(ys, points, strict=True)],
               [100 * p["hi"] - y for y, p in zip(ys, points, strict=True)]]  # fmt: skip
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, label=f"{name} (re-run)")
    for e in {id(e): e for e, _ in estimates}.values():
        rows = [r for r in e["ablation"] if r["estimate"]]
        xs = [r["max_iterations"] for r in rows]
        ys = [100 * r["estimate"]["value"] for r in rows]
        err = [[y - 100 * r["estimate"]["lo"] for y, r in zip(ys, rows, strict=True)],
               [100 * r["estimate"]["hi"] - y for y, r in zip(ys, rows, strict=True)]]  # fmt: skip
        ax.errorbar(xs, ys, yerr=err, marker="s", linestyle="--", capsize=4,
                    label=f"{e['label']} (estimate from trajectories)")  # fmt: skip
    ax.set(xlabel="max iterations", ylabel="resolved (%)", ylim=(0, 104),
           title="Resolve rate vs max iterations (95% CI)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def attempts_plot(report: dict[str, Any], path: Path) -> Path | None:
    """Per attempt of each iterative run: tasks attempted, resolved and left with an empty patch."""
    runs = [e for e in report["runs"] if e.get("attempts")]
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.2), squeeze=False)
    for ax, e in zip(axes[0], runs, strict=True):
        rows = e["attempts"]
        xs = range(len(rows))
        width = 0.27
        for offset, key, name in ((-width, "attempted", "attempted"), (0, "resolved", "resolved"),
                                  (width, "empty_patch", "empty patch")):  # fmt: skip
            bars = ax.bar([x + offset for x in xs], [r[key] for r in rows], width, label=name)
            ax.bar_label(bars, fontsize=8)
        ax.set_xticks(list(xs), [f"{r['attempt']}\nT={r['temperature']:g}" for r in rows])
        ax.set(xlabel="attempt", ylabel="tasks", title=f"{e['label']}: per attempt")
        ax.legend(fontsize=8)
    return _save(fig, path)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every plot the report has data for; returns their paths."""
    made = [pass_at_k_plot(report, out_dir / "pass_at_k.png"),
            iterations_plot(report, out_dir / "resolve_vs_iterations.png"),
            attempts_plot(report, out_dir / "attempts.png")]  # fmt: skip
    return [p for p in made if p is not None]
