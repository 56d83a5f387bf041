"""Rates with their confidence intervals: what a report prints for a run or a k-sample setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from devloop.stats.estimators import Samples, pass_at_k_per_task, pass_hat_k_per_task
from devloop.stats.formatting import rate_text
from devloop.stats.intervals import DEFAULT_RESAMPLES, bootstrap_ci, wilson


@dataclass(frozen=True)
class RateEstimate:
    """A rate in [0, 1] over `n` units with its confidence interval [lo, hi] at level `conf`.

    `method` says how the interval was made: "wilson" (one proportion) or "bootstrap" (over tasks).
    """

    value: float
    lo: float
    hi: float
    n: int
    conf: float = 0.95
    method: str = "wilson"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def short(self) -> str:
        """The rate and its interval in percent, e.g. "42.5% (28.5..57.8)"."""
        return rate_text(self, label=False)

    def __str__(self) -> str:
        """E.g. "42.5% (95% Wilson CI 28.5..57.8, n=40)"."""
        return rate_text(self, n=True)


def resolve_rate(resolved: int, total: int, conf: float = 0.95) -> RateEstimate:
    """The share of `total` tasks resolved, with a Wilson interval. A rate over 0 tasks is 0.0 in (0, 1)."""
    lo, hi = wilson(resolved, total, conf)
    value = resolved / total if total else 0.0
    return RateEstimate(value=value, lo=lo, hi=hi, n=total, conf=conf, method="wilson")


def _estimate(
    per_task: dict[str, float | None], conf: float, n_resamples: int, seed: int
) -> RateEstimate | None:
    """The mean of per-task values: a Wilson interval when every value is 0 or 1, else a bootstrap."""
    if not per_task or any(v is None for v in per_task.values()):
        return None
    values = [v for v in per_task.values() if v is not None]
    if all(v in (0.0, 1.0) for v in values):
        # Per-task outcomes are plain successes/failures (e.g. pass@1 from one sample each): a proportion.
        # Wilson stays honest where a percentile bootstrap collapses to zero width (all tasks alike).
        return resolve_rate(int(sum(values)), len(values), conf)
    lo, hi = bootstrap_ci(values, conf, n_resamples=n_resamples, seed=seed)
    return RateEstimate(
        value=sum(values) / len(values), lo=lo, hi=hi, n=len(values), conf=conf, method="bootstrap"
    )


def pass_at_k_estimate(
    samples: Mapping[str, Samples],
    k: int,
    conf: float = 0.95,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RateEstimate | None:
    """Mean pass@k over ``{task: (n, c)}`` with its interval: Wilson when every
    task's value is 0 or 1 (a proportion), else a seeded percentile bootstrap over tasks.

    None when there are no tasks or any task has fewer than k samples.
    """
    return _estimate(pass_at_k_per_task(samples, k), conf, n_resamples, seed)


def pass_hat_k_estimate(
    samples: Mapping[str, Samples],
    k: int,
    conf: float = 0.95,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RateEstimate | None:
    """Mean pass^k over ``{task: (n, c)}`` with its interval: Wilson when every
    task's value is 0 or 1 (a proportion), else a seeded percentile bootstrap over tasks.

    None when there are no tasks or any task has fewer than k samples.
    """
    return _estimate(pass_hat_k_per_task(samples, k), conf, n_resamples, seed)
