"""Comparing two runs on the tasks both ran: who resolves what, McNemar's exact test, paired CI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from devloop.stats.intervals import DEFAULT_RESAMPLES, paired_bootstrap_diff_ci
from devloop.stats.runs import RunReport, RunSource, load_run
from devloop.stats.summary import RateEstimate, resolve_rate

# How many task ids per cell the rendered table lists before eliding.
_IDS_SHOWN = 8


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    Under "the runs are equally good" each discordant task is a fair coin, so the count `b_only`
    of `a_only + b_only` is Binomial(n, 1/2); the p-value doubles the smaller tail (capped at 1),
    which matches the two-sided binomial test for p = 1/2. Computed exactly in integers.
    """
    for name, value in (("a_only", a_only), ("b_only", b_only)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    n = a_only + b_only
    if n == 0:
        return 1.0
    # C(n, i) built term by term: one big-int multiply per step instead of a fresh binomial each time.
    term = tail = 1
    for i in range(min(a_only, b_only)):
        term = term * (n - i) // (i + 1)
        tail += term
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class Comparison:
    """Run B against run A on their shared tasks. `diff` is B's resolve rate minus A's."""

    label_a: str
    label_b: str
    run_a: RunReport
    run_b: RunReport
    shared: int
    both: int
    a_only: int
    b_only: int
    neither: int
    a_only_ids: tuple[str, ...]
    b_only_ids: tuple[str, ...]
    rate_a: RateEstimate
    rate_b: RateEstimate
    diff: float
    diff_ci: tuple[float, float] | None  # None when there are no shared tasks
    p_value: float
    alpha: float = 0.05
    conf: float = 0.95
    seed: int = 0
    n_resamples: int = DEFAULT_RESAMPLES
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def net(self) -> int:
        """How many more shared tasks B resolves than A (negative when B resolves fewer)."""
        return self.b_only - self.a_only

    @property
    def significant(self) -> bool:
        return self.shared > 0 and self.p_value < self.alpha

    @property
    def only_ran_a(self) -> int:
        return len(self.run_a.ran - self.run_b.ran)

    @property
    def only_ran_b(self) -> int:
        return len(self.run_b.ran - self.run_a.ran)

    def verdict(self) -> str:
        """One sentence: the net difference, its interval, and whether McNemar's test finds it real."""
        a, b = self.label_a, self.label_b
        if self.shared == 0 or self.diff_ci is None:
            return f"{a} and {b} ran no tasks in common: nothing to compare."
        if self.net > 0:
            head = f"{b} resolves {self.net} more of {self.shared} shared tasks"
        elif self.net < 0:
            head = f"{b} resolves {-self.net} fewer of {self.shared} shared tasks"
        else:
            head = f"{b} resolves as many of {self.shared} shared tasks as {a}"
        lo, hi = self.diff_ci
        ci = f"{100 * self.diff:+.1f} pts, {100 * self.conf:g}% CI {100 * lo:+.1f}..{100 * hi:+.1f}"
        test = f"McNemar exact {_fmt_p(self.p_value)}"
        if self.significant:
            tail = f"significant at {self.alpha:g}"
        else:
            tail = f"not significant at {self.alpha:g}: no evidence {b} differs from {a}"
        return f"{head} ({ci}); {test}: {tail}"

    def to_dict(self) -> dict[str, Any]:
        """Everything above as JSON-ready values (sets as sorted lists, paths as strings)."""
        return {
            "a": _run_dict(self.label_a, self.run_a, self.rate_a),
            "b": _run_dict(self.label_b, self.run_b, self.rate_b),
            "shared": self.shared,
            "only_ran_a": self.only_ran_a,
            "only_ran_b": self.only_ran_b,
            "both": self.both,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "neither": self.neither,
            "a_only_ids": list(self.a_only_ids),
            "b_only_ids": list(self.b_only_ids),
            "diff": self.diff,
            "diff_ci": list(self.diff_ci) if self.diff_ci is not None else None,
            "p_value": self.p_value,
            "significant": self.significant,
            "alpha": self.alpha,
            "conf": self.conf,
            "seed": self.seed,
            "n_resamples": self.n_resamples,
            "test": "mcnemar_exact",
            "ci_method": "paired_bootstrap_percentile",
            "notes": list(self.notes),
            "verdict": self.verdict(),
        }

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
        runs.add_row(
            f"resolve rate (shared, {100 * self.conf:g}% CI)", self.rate_a.short(), self.rate_b.short()
        )
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
) -> Comparison:
    """Compare run B against run A on the tasks both ran.

    Each run is a run directory holding report.json, the report.json path, a decoded report, or a
    RunReport. Raises ValueError (one line naming the path and field) for a missing or invalid report.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    # A decoded report has no path to name it by, so it takes its label.
    ra = load_run(run_a, name=label_a if isinstance(run_a, Mapping) else None)
    rb = load_run(run_b, name=label_b if isinstance(run_b, Mapping) else None)
    tasks = sorted(ra.ran & rb.ran)
    a_flags = [t in ra.resolved for t in tasks]
    b_flags = [t in rb.resolved for t in tasks]
    both = sum(x and y for x, y in zip(a_flags, b_flags, strict=True))
    a_only_ids = tuple(t for t, x, y in zip(tasks, a_flags, b_flags, strict=True) if x and not y)
    b_only_ids = tuple(t for t, x, y in zip(tasks, a_flags, b_flags, strict=True) if y and not x)
    shared = len(tasks)
    neither = shared - both - len(a_only_ids) - len(b_only_ids)
    resolved_a = both + len(a_only_ids)
    resolved_b = both + len(b_only_ids)
    if shared:
        diff = (resolved_b - resolved_a) / shared
        diff_ci = paired_bootstrap_diff_ci(a_flags, b_flags, conf, n_resamples=n_resamples, seed=seed)
    else:
        diff, diff_ci = 0.0, None
    notes = []
    left_out = len(ra.ran ^ rb.ran)
    if left_out:
        notes.append(f"{left_out} task(s) ran in only one of the two runs and are left out of the comparison")
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        run_a=ra,
        run_b=rb,
        shared=shared,
        both=both,
        a_only=len(a_only_ids),
        b_only=len(b_only_ids),
        neither=neither,
        a_only_ids=a_only_ids,
        b_only_ids=b_only_ids,
        rate_a=resolve_rate(resolved_a, shared, conf),
        rate_b=resolve_rate(resolved_b, shared, conf),
        diff=diff,
        diff_ci=diff_ci,
        p_value=mcnemar_exact(len(a_only_ids), len(b_only_ids)),
        alpha=alpha,
        conf=conf,
        seed=seed,
        n_resamples=n_resamples,
        notes=tuple(notes),
    )


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3g}"


def _where(run: RunReport) -> str:
    return str(run.path) if run.path is not None else run.name


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:_IDS_SHOWN])
    return shown + (f", ... (+{len(ids) - _IDS_SHOWN})" if len(ids) > _IDS_SHOWN else "")


def _run_dict(label: str, run: RunReport, rate: RateEstimate) -> dict[str, Any]:
    return {
        "label": label,
        "name": run.name,
        "path": str(run.path) if run.path is not None else None,
        "ran": len(run.ran),
        "resolved": len(run.resolved),
        "shared_rate": rate.to_dict(),
    }
