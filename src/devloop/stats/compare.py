"""Comparing two runs' outcomes on the tasks both ran: who resolves what, McNemar's exact test, paired CI.

Pure: the inputs are the sets of task ids each run ran and resolved. Reading runs from disk and printing
the comparison is `devloop.reports.compare`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from devloop.stats.formatting import interval_text
from devloop.stats.intervals import DEFAULT_RESAMPLES, paired_bootstrap_diff_ci
from devloop.stats.summary import RateEstimate, resolve_rate

DIFF_METHOD = "paired_bootstrap_percentile"


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
    return min(1.0, 2 * tail / (1 << n))


@dataclass(frozen=True)
class Comparison:
    """Run B against run A on their shared tasks. `diff` is B's resolve rate minus A's."""

    label_a: str
    label_b: str
    ran_a: frozenset[str]
    ran_b: frozenset[str]
    resolved_a: frozenset[str]
    resolved_b: frozenset[str]
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
        return len(self.ran_a - self.ran_b)

    @property
    def only_ran_b(self) -> int:
        return len(self.ran_b - self.ran_a)

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
        ci = interval_text(self.diff, lo, hi, conf=self.conf, method=DIFF_METHOD, signed=True, unit=" pts")
        test = f"McNemar exact {_fmt_p(self.p_value)}"
        if self.significant:
            tail = f"significant at {self.alpha:g}"
        else:
            tail = f"not significant at {self.alpha:g}: no evidence {b} differs from {a}"
        return f"{head}: {ci}; {test}: {tail}"

    def to_dict(self) -> dict[str, Any]:
        """Everything above as JSON-ready values (id sets as counts and sorted lists)."""
        return {
            "a": _side(self.label_a, self.ran_a, self.resolved_a, self.rate_a),
            "b": _side(self.label_b, self.ran_b, self.resolved_b, self.rate_b),
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
            "ci_method": DIFF_METHOD,
            "notes": list(self.notes),
            "verdict": self.verdict(),
        }


def compare_outcomes(
    ran_a: Set[str],
    resolved_a: Set[str],
    ran_b: Set[str],
    resolved_b: Set[str],
    *,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
    conf: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Compare run B against run A on the tasks both ran.

    `ran_*` are the task ids each run attempted, `resolved_*` those it resolved (a resolved id outside
    `ran_*` counts as ran). Raises ValueError for an alpha outside (0, 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    ok_a, ok_b = frozenset(resolved_a), frozenset(resolved_b)
    all_a, all_b = frozenset(ran_a) | ok_a, frozenset(ran_b) | ok_b
    tasks = sorted(all_a & all_b)
    a_flags = [t in ok_a for t in tasks]
    b_flags = [t in ok_b for t in tasks]
    both = sum(x and y for x, y in zip(a_flags, b_flags, strict=True))
    a_only_ids = tuple(t for t, x, y in zip(tasks, a_flags, b_flags, strict=True) if x and not y)
    b_only_ids = tuple(t for t, x, y in zip(tasks, a_flags, b_flags, strict=True) if y and not x)
    shared = len(tasks)
    neither = shared - both - len(a_only_ids) - len(b_only_ids)
    shared_a = both + len(a_only_ids)
    shared_b = both + len(b_only_ids)
    if shared:
        diff = (shared_b - shared_a) / shared
        diff_ci = paired_bootstrap_diff_ci(a_flags, b_flags, conf, n_resamples=n_resamples, seed=seed)
    else:
        diff, diff_ci = 0.0, None
    notes = []
    left_out = len(all_a ^ all_b)
    if left_out:
        notes.append(f"{left_out} task(s) ran in only one of the two runs and are left out of the comparison")
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        ran_a=all_a,
        ran_b=all_b,
        resolved_a=ok_a,
        resolved_b=ok_b,
        shared=shared,
        both=both,
        a_only=len(a_only_ids),
        b_only=len(b_only_ids),
        neither=neither,
        a_only_ids=a_only_ids,
        b_only_ids=b_only_ids,
        rate_a=resolve_rate(shared_a, shared, conf),
        rate_b=resolve_rate(shared_b, shared, conf),
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


def _side(label: str, ran: frozenset[str], resolved: frozenset[str], rate: RateEstimate) -> dict[str, Any]:
    return {"label": label, "ran": len(ran), "resolved": len(resolved), "shared_rate": rate.to_dict()}
