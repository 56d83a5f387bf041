"""Plots a person reads: written for a single run, legends off the data, integer axes, methods named,
identical lines told apart. Checked on the matplotlib objects the figure functions return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from devloop.reports.plots import (
    MARKERS,
    attempts_figure,
    iterations_figure,
    missing_plots,
    outcomes_figure,
    pass_at_k_figure,
    plot_gaps,
    write_plots,
)
from devloop.stats import pass_at_k_estimate, resolve_rate


def rate(resolved: int, total: int) -> dict[str, Any]:
    return resolve_rate(resolved, total).to_dict()


def entry(label: str, resolved: int, tasks: int, **extra: Any) -> dict[str, Any]:
    """A report entry (devloop.reports.report.run_entry's shape) with what the plots read."""
    return {
        "label": label,
        "setting": extra.pop("setting", "single T=0 50 it"),
        "tasks": tasks,
        "max_iterations": extra.pop("max_iterations", 50),
        "temperature": extra.pop("temperature", 0.0),
        "headline": {"metric": "resolve rate", **rate(resolved, tasks)},
        "final": {"resolved": resolved, "total": tasks, "rate": rate(resolved, tasks)},
        "outcomes": extra.pop("outcomes", {"resolved": resolved, "unresolved": tasks - resolved}),
        **extra,
    }


def report(*entries: dict[str, Any], series: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    return {"runs": list(entries), "resolve_vs_max_iterations": series or {}}


def pass_rows(samples: dict[str, tuple[int, int]], ks: list[int]) -> list[dict[str, Any]]:
    rows = []
    for k in ks:
        est = pass_at_k_estimate(samples, k)
        rows.append({"k": k, "pass_at_k": est.to_dict() if est else None, "pass_hat_k": None})
    return rows


SAMPLES = {"a": (4, 3), "b": (4, 1), "c": (4, 0), "d": (4, 4)}


def sampled(label: str, temperature: float) -> dict[str, Any]:
    return entry(
        label,
        2,
        4,
        setting=f"samples T={temperature:g} 50 it",
        temperature=temperature,
        pass_at_k=pass_rows(SAMPLES, [1, 2, 4]),
    )


def sweep_series() -> dict[str, list[dict[str, Any]]]:
    points = [(3, 1), (5, 3), (8, 4)]
    same = [{"max_iterations": m, "run": f"i{m}", "metric": "resolve rate", **rate(r, 4)} for m, r in points]
    return {"T=0": same, "T=0.7": [dict(p) for p in same]}


def iterative() -> dict[str, Any]:
    attempts = [
        {"attempt": 1, "temperature": 0.0, "attempted": 7, "resolved": 3, "empty_patch": 2},
        {"attempt": 2, "temperature": 0.1, "attempted": 4, "resolved": 1, "empty_patch": 1},
        {"attempt": 3, "temperature": 0.1, "attempted": 3, "resolved": 0, "empty_patch": 3},
    ]
    return entry("iter", 4, 7, setting="iterative 50 it", temperature=None, attempts=attempts)


def every_figure() -> list[Figure]:
    rep = report(
        entry("one", 3, 7), sampled("s0", 0.0), sampled("s7", 0.7), iterative(), series=sweep_series()
    )
    figures = [outcomes_figure(rep), pass_at_k_figure(rep), iterations_figure(rep), attempts_figure(rep)]
    assert all(f is not None for f in figures)
    return [f for f in figures if f is not None]


def test_a_single_run_gets_its_outcomes_plot_and_one_line_per_missing_plot(tmp_path: Path) -> None:
    single = report(entry("single-a", 3, 7, outcomes={"resolved": 3, "unresolved": 2, "empty_patch": 2}))
    written, gaps = write_plots(single, tmp_path)
    assert written == [tmp_path / "outcomes.png"]
    assert (tmp_path / "outcomes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "outcomes.png").stat().st_size > 5000
    assert gaps == plot_gaps(single) == missing_plots(written) and len(gaps) == 3
    assert all(g.startswith("no ") and "\n" not in g for g in gaps)
    assert any("more than one sample per task" in g for g in gaps)
    fig = outcomes_figure(single)
    assert fig is not None
    ax = fig.axes[0]
    bars = [p.get_width() for p in ax.patches]
    assert bars == [3, 2, 2]  # resolved, unresolved, empty patch, stacked in that order
    assert "95% Wilson CI" in ax.get_yticklabels()[0].get_text()


def test_legends_sit_outside_the_axes_and_their_labels() -> None:
    for fig in every_figure():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        assert fig.legends, fig.axes[0].get_title()
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not ax.get_legend()
                # tightbbox covers the plotting area, tick labels, axis labels and title
                assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()


def test_counts_and_settings_get_integer_ticks() -> None:
    outcomes, pass_k, iterations, attempts = every_figure()
    assert all(float(t).is_integer() for t in outcomes.axes[0].get_xticks())
    assert all(float(t).is_integer() for t in attempts.axes[0].get_yticks())
    assert list(pass_k.axes[0].get_xticks()) == [1, 2, 4]
    assert [t.get_text() for t in pass_k.axes[0].get_xticklabels()] == ["1", "2", "4"]
    assert list(iterations.axes[0].get_xticks()) == [3, 5, 8]


def test_titles_name_the_interval_method() -> None:
    _, pass_k, iterations, attempts = every_figure()
    # 4 samples: pass@1 and pass@2 average fractions (bootstrap); pass@4 is 0/1 per task (Wilson)
    title = pass_k.axes[0].get_title().replace("\n", " ")
    assert "bootstrap over tasks at k=1, 2" in title and "Wilson at k=4" in title
    assert "95% Wilson CI" in iterations.axes[0].get_title()
    assert "95% Wilson CI" in attempts.axes[0].get_title()
    boot_only = report(entry("b", 1, 4, pass_at_k=pass_rows(SAMPLES, [1, 2])))
    fig = pass_at_k_figure(boot_only)
    assert fig is not None and "95% bootstrap CI over tasks" in fig.axes[0].get_title()
    assert "Wilson" not in fig.axes[0].get_title()


@pytest.mark.parametrize("which", ["pass_at_k", "iterations"])
def test_identical_lines_stay_distinguishable(which: str) -> None:
    _, pass_k, iterations, _ = every_figure()
    fig = pass_k if which == "pass_at_k" else iterations
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_marker() in MARKERS]  # not the error bars' caps
    assert len(lines) == 2
    first, second = lines
    assert list(first.get_ydata()) == list(second.get_ydata())  # the same results...
    assert first.get_marker() != second.get_marker() and first.get_linestyle() != second.get_linestyle()
    assert all(a != b for a, b in zip(first.get_xdata(), second.get_xdata(), strict=True))  # ...drawn apart
    title = fig.legends[0].get_title().get_text()
    assert title.startswith("identical results") and " = " in title


def test_plots_are_skipped_without_data() -> None:
    empty = report(entry("none", 0, 0, outcomes={}))
    assert outcomes_figure(empty) is None and pass_at_k_figure(empty) is None
    assert iterations_figure(empty) is None and attempts_figure(empty) is None
    assert len(plot_gaps(empty)) == 4
