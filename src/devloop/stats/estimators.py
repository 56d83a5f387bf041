"""Point estimators for repeated-sample evaluation: pass@k and pass^k, per task and averaged.

With n samples of a task of which c succeed:

* pass@k — the chance that at least one of k samples drawn without replacement succeeds,
  ``1 - C(n-c, k) / C(n, k)`` (the unbiased estimator of Chen et al., 2021, "Evaluating Large
  Language Models Trained on Code").
* pass^k — the chance that all k drawn samples succeed, ``C(c, k) / C(n, k)`` (the reliability
  measure popularised by tau-bench).

Both are computed as running products of ratios no larger than one, so n in the hundreds or thousands
neither overflows nor loses precision the way ratios of huge binomials in floating point would.
A k larger than n has no unbiased estimate; the functions return None for it rather than a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

# A task's samples: (n, c) = (number of samples, number that succeeded).
Samples = tuple[int, int]


def _check(n: int, c: int, k: int) -> None:
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n < 0:
        raise ValueError(f"n (samples) must be >= 0, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c (successes) must be between 0 and n={n}, got {c}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Unbiased pass@k for one task with `n` samples of which `c` succeeded; None when k > n.

    Uses the product form ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which equals
    ``1 - C(n-c, k) / C(n, k)`` without forming either binomial.
    """
    _check(n, c, k)
    if k > n:
        return None
    if n - c < k:
        # Every k-subset must contain a success.
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_hat_k(n: int, c: int, k: int) -> float | None:
    """pass^k (all k draws succeed) for one task with `n` samples, `c` successes; None when k > n.

    Uses the product form ``prod_{i=0}^{k-1} (c-i)/(n-i)``, equal to ``C(c, k) / C(n, k)``.
    """
    _check(n, c, k)
    if k > n:
        return None
    if c < k:
        return 0.0
    hit = 1.0
    for i in range(k):
        hit *= (c - i) / (n - i)
    return hit


def _per_task(
    samples: Mapping[str, Samples], k: int, fn: Callable[[int, int, int], float | None]
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for task, pair in samples.items():
        try:
            n, c = pair
            out[task] = fn(n, c, k)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"task {task!r}: bad (n, c) sample counts {pair!r}: {exc}") from None
    return out


def _mean(values: dict[str, float | None]) -> float | None:
    # A task lacking k samples makes the whole mean undefined: dropping it would silently change
    # the task set the number describes.
    if not values or any(v is None for v in values.values()):
        return None
    return sum(v for v in values.values() if v is not None) / len(values)


def pass_at_k_per_task(samples: Mapping[str, Samples], k: int) -> dict[str, float | None]:
    """pass@k for each task of ``{task: (n, c)}``; None for a task with fewer than k samples."""
    return _per_task(samples, k, pass_at_k)


def pass_hat_k_per_task(samples: Mapping[str, Samples], k: int) -> dict[str, float | None]:
    """pass^k for each task of ``{task: (n, c)}``; None for a task with fewer than k samples."""
    return _per_task(samples, k, pass_hat_k)


def mean_pass_at_k(samples: Mapping[str, Samples], k: int) -> float | None:
    """Mean pass@k over the tasks of ``{task: (n, c)}``.

    None when there are no tasks or any task has fewer than k samples.
    """
    return _mean(pass_at_k_per_task(samples, k))


def mean_pass_hat_k(samples: Mapping[str, Samples], k: int) -> float | None:
    """Mean pass^k over the tasks of ``{task: (n, c)}``.

    None when there are no tasks or any task has fewer than k samples.
    """
    return _mean(pass_hat_k_per_task(samples, k))
