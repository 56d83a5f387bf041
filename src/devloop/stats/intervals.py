"""Confidence intervals: Wilson score for one proportion, percentile bootstrap over tasks.

The bootstrap resamples *tasks* (the unit that was sampled from the benchmark), so the interval
reflects how much a rate would move on another draw of tasks of the same kind. It is seeded: the
same inputs and seed always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the bootstrap itself: ~0.1 s that a Wilson interval need not pay
    import numpy as np

DEFAULT_RESAMPLES = 10_000
# Resampled index matrices are built this many rows at a time, bounding memory for large task sets.
_CHUNK_ROWS = 1_000


def _check_conf(conf: float) -> None:
    if not (isinstance(conf, int | float) and 0.0 < conf < 1.0):
        raise ValueError(f"conf must be a number strictly between 0 and 1, got {conf!r}")


def _z(conf: float) -> float:
    return NormalDist().inv_cdf(0.5 + conf / 2.0)


def wilson(successes: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` trials at confidence `conf`.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and is sensible at 0/n and n/n.
    With n == 0 nothing is known and the interval is the whole range (0.0, 1.0).
    """
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes} of {n}")
    _check_conf(conf)
    if n == 0:
        return (0.0, 1.0)
    z = _z(conf)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    # Pin the ends exactly at the bounds when the data sit there (avoids -1e-17 from rounding).
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def bootstrap_means(
    values: Sequence[float] | np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Means of `n_resamples` resamples (with replacement) of `values`; seeded and reproducible."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"bootstrap needs a non-empty 1-D list of values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("bootstrap values must be finite numbers (found NaN or inf)")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples, dtype=float)
    for start in range(0, n_resamples, _CHUNK_ROWS):
        rows = min(_CHUNK_ROWS, n_resamples - start)
        idx = rng.integers(0, arr.size, size=(rows, arr.size))
        out[start : start + rows] = arr[idx].mean(axis=1)
    return out


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    conf: float = 0.95,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of `values` (one value per task).

    Use it for any rate averaged over tasks: 0/1 resolved flags, per-task pass@k, paired
    differences. Constant values give a zero-width interval at that value.
    """
    import numpy as np

    _check_conf(conf)
    means = bootstrap_means(values, n_resamples=n_resamples, seed=seed)
    alpha = 1.0 - conf
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lo), float(hi))


def paired_bootstrap_diff_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    conf: float = 0.95,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for mean(b) - mean(a) where a[i], b[i] are the same task.

    Tasks are resampled as pairs, so the interval accounts for the two runs sharing tasks (much
    tighter than two independent intervals when the runs agree on most tasks).
    """
    import numpy as np

    arr_a = np.asarray(a, dtype=float)
    arr_b = np.asarray(b, dtype=float)
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"paired bootstrap needs equal-length lists, got {arr_a.shape} and {arr_b.shape}")
    return bootstrap_ci(arr_b - arr_a, conf, n_resamples=n_resamples, seed=seed)
