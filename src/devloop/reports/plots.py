"""PNG plots of a report (matplotlib's object API, no pyplot state): outcomes per run, pass@k curves,
resolve rate against max iterations, per-attempt bars.

Each `*_figure(report)` returns the Figure (None when the report has no data for it) so its labels, axes
and legend can be inspected; `write_plots` saves them and `plot_gaps` says, one line each, why any plot
is missing. The conventions every plot keeps:

* every rate is drawn with its 95% interval, and the title names the method (Wilson / bootstrap);
* task counts and other integer quantities (k, max iterations, attempts) get integer ticks;
* the legend sits below the axes, never over the data;
* lines with identical results are told apart: their own marker and dash, a small horizontal offset where
  points share an x (ticks stay at the true values), and a note in the legend's title naming them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from devloop.stats.formatting import methods_note, rate_text

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":")
OUTCOME_COLOURS = {
    "resolved": "#2ca02c",
    "unresolved": "#ff7f0e",
    "empty_patch": "#9e9e9e",
    "agent_error": "#9467bd",
    "no_prediction": "#d9d9d9",
}
_ERROR_COLOUR = "#d62728"
_DPI = 120


def _style(i: int) -> dict[str, Any]:
    return {"color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)], "linestyle": DASHES[i % len(DASHES)]}


def _dodge(xs: Sequence[Sequence[float]], step: float) -> list[list[float]]:
    """Each series' x values, spread `step` apart around the true x where several series share it (a
    point no other series has stays on its tick)."""
    at: dict[float, list[int]] = {}
    for i, values in enumerate(xs):
        for x in values:
            at.setdefault(x, []).append(i)
    return [
        [x + (at[x].index(i) - (len(at[x]) - 1) / 2) * step for x in values] for i, values in enumerate(xs)
    ]


def _identical(series: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> list[list[str]]:
    """Groups (two or more) of series names whose points are the same: same x, same values."""
    groups: dict[tuple[tuple[float, float], ...], list[str]] = {}
    for name, xs, ys in series:
        key = tuple((float(x), round(y, 9)) for x, y in zip(xs, ys, strict=True))
        groups.setdefault(key, []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _legend(fig: Figure, ax: Axes, same: list[list[str]] | None = None) -> None:
    """The legend outside the axes, centred below them; identical lines named in its title."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    title = None
    if same:
        title = "identical results, drawn slightly apart: " + "; ".join(" = ".join(g) for g in same)
        title = textwrap.fill(title, 110)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(2, len(labels)),
        fontsize=8,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def _k_methods(runs: Sequence[dict[str, Any]]) -> str:
    """The pass@k bars' interval, naming the k each method was used at when a plot mixes them."""
    at: dict[str, list[int]] = {}
    for e in runs:
        for r in e["pass_at_k"]:
            if r["pass_at_k"]:
                at.setdefault(r["pass_at_k"]["method"], []).append(r["k"])
    if len(at) < 2:
        return methods_note([r["pass_at_k"] for e in runs for r in e["pass_at_k"]])
    ks = {m: ", ".join(str(k) for k in sorted(set(v))) for m, v in at.items()}
    parts = [f"bootstrap over tasks at k={ks.pop('bootstrap')}"] if "bootstrap" in ks else []
    if "wilson" in ks:
        parts.append(f"Wilson at k={ks.pop('wilson')} (each task 0 or 1)")
    parts += [f"{m} at k={v}" for m, v in ks.items()]
    return "95% CI, " + "; ".join(parts)


def _title(ax: Axes, head: str, note: str) -> None:
    ax.set_title(head + "\n" + textwrap.fill(note, 90), fontsize=10)


def _percent_axis(ax: Axes, label: str) -> None:
    ax.set_ylim(-3, 103)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)


def _figure(height: float, width: float = 6.8) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=_DPI)
    return fig, fig.add_subplot()


def outcomes_figure(report: dict[str, Any]) -> Figure | None:
    """One horizontal bar per run: its tasks by the outcome of their chosen attempt, with the final
    resolve rate (Wilson CI) under the run's name. Drawn for any run with tasks, a single run included."""
    runs = [e for e in report["runs"] if e.get("tasks") and e.get("outcomes")]
    if not runs:
        return None
    fig, ax = _figure(1.9 + 0.55 * len(runs))
    names = list(dict.fromkeys(name for e in runs for name in e["outcomes"]))
    ys = list(range(len(runs)))[::-1]  # the first run on top
    left = [0] * len(runs)
    for name in names:
        widths = [e["outcomes"].get(name, 0) for e in runs]
        bars = ax.barh(
            ys,
            widths,
            left=left,
            height=0.6,
            label=name.replace("_", " "),
            color=OUTCOME_COLOURS.get(name, _ERROR_COLOUR),
            edgecolor="white",
        )
        ax.bar_label(bars, labels=[str(w) if w else "" for w in widths], label_type="center", fontsize=8)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(
        ys,
        [f"{e['label']} ({e['setting']})\nresolved {rate_text(e['final']['rate'])}" for e in runs],
        fontsize=8,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(left) * 1.02)
    ax.set_xlabel("tasks")
    _title(ax, "Outcome of each task's prediction", "(the attempt or sample chosen as its patch)")
    _legend(fig, ax)
    return fig


def pass_at_k_figure(report: dict[str, Any]) -> Figure | None:
    """pass@k against k for each sampled run, with its CI as error bars (k on a log2 axis, integer ticks)."""
    runs = [e for e in report["runs"] if len([r for r in e.get("pass_at_k", []) if r["pass_at_k"]]) > 1]
    if not runs:
        return None
    fig, ax = _figure(4.8)
    series = []
    rows_of = [[r for r in e["pass_at_k"] if r["pass_at_k"]] for e in runs]
    log_ks = _dodge([[math.log2(r["k"]) for r in rows] for rows in rows_of], 0.035)  # a few percent of k
    for i, (e, rows) in enumerate(zip(runs, rows_of, strict=True)):
        ks = [2**x for x in log_ks[i]]
        # error bars, not bands: several settings' bands stacked on each other hide one another
        _errorbars(ax, ks, [r["pass_at_k"] for r in rows], f"{e['label']} ({e['setting']})", _style(i))
        series.append((e["label"], [r["k"] for r in rows], [100 * r["pass_at_k"]["value"] for r in rows]))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted({r["k"] for e in runs for r in e["pass_at_k"]})))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("k (samples drawn)")
    _percent_axis(ax, "pass@k (%)")
    _title(ax, "pass@k by setting", f"bars: {_k_methods(runs)}")
    _legend(fig, ax, _identical(series))
    return fig


def _errorbars(
    ax: Axes, xs: list[float], rates: list[dict[str, Any]], name: str, style: dict[str, Any]
) -> None:
    ys = [100 * r["value"] for r in rates]
    err = [
        [y - 100 * r["lo"] for y, r in zip(ys, rates, strict=True)],
        [100 * r["hi"] - y for y, r in zip(ys, rates, strict=True)],
    ]
    ax.errorbar(xs, ys, yerr=err, capsize=4, markersize=6, label=name, **style)


def iterations_figure(report: dict[str, Any]) -> Figure | None:
    """Resolve rate (pass@1 for sampled runs) against max_iterations, one line per temperature, plus
    estimates from trajectories (--at-iterations), each point with its CI."""
    series_in = {k: v for k, v in report["resolve_vs_max_iterations"].items() if v}
    estimated = [e for e in report["runs"] if any(r["estimate"] for r in e.get("ablation", []))]
    lines: list[tuple[str, list[int], list[dict[str, Any]], str]] = []
    for key, points in series_in.items():
        metrics = sorted({p["metric"] for p in points})
        name = f"{key} (a run at each limit)"
        lines.append((name, [p["max_iterations"] for p in points], points, " / ".join(metrics)))
    for e in estimated:
        rows = [r for r in e["ablation"] if r["estimate"]]
        unknown = [str(r["max_iterations"]) for r in e["ablation"] if not r["estimate"]]
        missing = f"; n/a at {', '.join(unknown)}: cut by its own limit" if unknown else ""
        lines.append(
            (
                f"{e['label']} (estimate from its trajectories{missing})",
                [r["max_iterations"] for r in rows],
                [r["estimate"] for r in rows],
                "resolve rate",
            )
        )
    if not any(len(xs) > 1 for _, xs, _, _ in lines) and not estimated:
        return None
    fig, ax = _figure(4.8)
    all_x = sorted({x for _, xs, _, _ in lines for x in xs})
    dodged = _dodge([xs for _, xs, _, _ in lines], 0.02 * ((all_x[-1] - all_x[0]) or 1))
    for i, (name, _, rates, _) in enumerate(lines):
        _errorbars(ax, dodged[i], rates, name, _style(i))
    ax.xaxis.set_major_locator(FixedLocator(all_x) if len(all_x) <= 12 else MaxNLocator(integer=True))
    ax.set_xlabel("max iterations")
    metrics = sorted({m for _, _, _, m in lines})
    _percent_axis(ax, " / ".join(metrics) + " (%)")
    rates = [r for _, _, rs, _ in lines for r in rs]
    _title(ax, f"{' / '.join(metrics)} vs max iterations", f"bars: {methods_note(rates)}")
    same = _identical([(n.split(" (")[0], xs, [100 * r["value"] for r in rs]) for n, xs, rs, _ in lines])
    _legend(fig, ax, same)
    return fig


def attempts_figure(report: dict[str, Any]) -> Figure | None:
    """Per attempt of each iterative run: tasks attempted, resolved, left with an empty patch, and not
    finished (with the empty patches, the tasks the next attempt retries)."""
    runs = [e for e in report["runs"] if e.get("attempts")]
    if not runs:
        return None
    fig = Figure(figsize=(5.4 * len(runs), 4.4), layout="constrained", dpi=_DPI)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    kinds = (
        ("attempted", "attempted", "C0"),
        ("resolved", "resolved", OUTCOME_COLOURS["resolved"]),
        ("empty_patch", "empty patch", OUTCOME_COLOURS["empty_patch"]),
        ("not_finished", "not finished", "#8c564b"),
    )
    width = 0.2
    for ax, e in zip(axes, runs, strict=True):
        rows = e["attempts"]
        for j, (key, name, colour) in enumerate(kinds):
            xs = [x + (j - 1.5) * width for x in range(len(rows))]
            bars = ax.bar(xs, [r.get(key, 0) for r in rows], width, label=name, color=colour)
            ax.bar_label(bars, fontsize=8)
        ax.set_xticks(range(len(rows)), [f"{r['attempt']}\nT={r['temperature']:g}" for r in rows])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, max([e["tasks"], *(r["attempted"] for r in rows)]) * 1.12 + 0.5)
        final = rate_text(e["final"]["rate"])
        ax.set(xlabel="attempt", ylabel="tasks")
        ax.set_title(f"{e['label']}: per attempt\nfinal: resolved {final}", fontsize=10)
    _legend(fig, axes[0])
    return fig


PlotFn = Callable[[dict[str, Any]], Figure | None]
# (file name, what it is, how to draw it, why it can be missing)
PLOTS: tuple[tuple[str, str, PlotFn, str], ...] = (
    ("outcomes.png", "outcomes", outcomes_figure, "no run has any task"),
    (
        "pass_at_k.png",
        "pass@k",
        pass_at_k_figure,
        "no run has more than one sample per task (`--protocol samples --samples N` draws them)",
    ),
    (
        "resolve_vs_iterations.png",
        "resolve rate vs max iterations",
        iterations_figure,
        "needs runs at two or more max-iterations limits (`devloop sweep --max-iterations 30,50`) "
        "or `devloop report --at-iterations L1,L2`",
    ),
    ("attempts.png", "per-attempt", attempts_figure, "no run used `--protocol iterative`"),
)


def _drawn(report: dict[str, Any]) -> list[tuple[str, Figure | None, str, str]]:
    return [(file, fn(report), what, why) for file, what, fn, why in PLOTS]


def plot_gaps(report: dict[str, Any]) -> list[str]:
    """One line per plot the report has no data for, saying why."""
    return [f"no {what} plot: {why}" for _, fig, what, why in _drawn(report) if fig is None]


def missing_plots(written: Sequence[Path]) -> list[str]:
    """plot_gaps' lines from the files write_plots wrote, without drawing again."""
    names = {p.name for p in written}
    return [f"no {what} plot: {why}" for file, what, _, why in PLOTS if file not in names]


def write_plots(report: dict[str, Any], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Every plot the report has data for, saved as PNG in `out_dir`: their paths, and plot_gaps' lines."""
    written, gaps = [], []
    for file, fig, what, why in _drawn(report):
        if fig is None:
            gaps.append(f"no {what} plot: {why}")
        else:
            fig.savefig(out_dir / file)
            written.append(out_dir / file)
    return written, gaps
