"""Wilson and bootstrap intervals, and the rate summaries built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devloop.stats import (
    RateEstimate,
    bootstrap_ci,
    bootstrap_means,
    paired_bootstrap_diff_ci,
    pass_at_k_estimate,
    pass_hat_k_estimate,
    resolve_rate,
    wilson,
)

Z95 = 1.959963984540054


def reference_wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson written in the other common closed form: (2x + z^2 +- z sqrt(z^2 + 4x(n-x)/n)) / 2(n + z^2)."""
    root = z * math.sqrt(z * z + 4 * x * (n - x) / n)
    return ((2 * x + z * z - root) / (2 * (n + z * z)), (2 * x + z * z + root) / (2 * (n + z * z)))


@pytest.mark.parametrize(("x", "n"), [(0, 10), (10, 10), (5, 10), (1, 20), (37, 100), (0, 1), (299, 300)])
def test_wilson_matches_reference(x: int, n: int) -> None:
    lo, hi = wilson(x, n)
    ref_lo, ref_hi = reference_wilson(x, n)
    assert lo == pytest.approx(max(0.0, ref_lo), abs=1e-12)
    assert hi == pytest.approx(min(1.0, ref_hi), abs=1e-12)


def test_wilson_published_values() -> None:
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert wilson(5, 10) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


def test_wilson_confidence_level_and_empty() -> None:
    lo90, hi90 = wilson(5, 10, conf=0.90)
    lo95, hi95 = wilson(5, 10)
    assert lo95 < lo90 < 0.5 < hi90 < hi95
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [((11, 10), "between 0 and n"), ((-1, 10), "between 0 and n"), ((1.0, 10), "integer")],
)
def test_wilson_rejects_bad_counts(args: tuple, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        wilson(*args)


@pytest.mark.parametrize("conf", [0, 1, 1.5, -0.1, "0.95"])
def test_bad_conf_rejected(conf: object) -> None:
    with pytest.raises(ValueError, match="conf must be"):
        wilson(3, 10, conf=conf)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conf must be"):
        bootstrap_ci([0.0, 1.0], conf=conf)  # type: ignore[arg-type]


def bernoulli(n: int, p: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    values = bernoulli(50, 0.4)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert np.array_equal(bootstrap_means(values, seed=3), bootstrap_means(values, seed=3))
    assert not np.array_equal(bootstrap_means(values, seed=3), bootstrap_means(values, seed=4))


def test_bootstrap_contains_the_estimate_and_shrinks_with_n() -> None:
    widths = []
    for n in (20, 80, 320, 1280):
        values = bernoulli(n, 0.3, seed=n)
        lo, hi = bootstrap_ci(values, n_resamples=4000)
        assert lo <= values.mean() <= hi
        assert 0.0 <= lo < hi <= 1.0
        widths.append(hi - lo)
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < widths[0] / 4


def test_bootstrap_width_agrees_with_normal_theory() -> None:
    values = bernoulli(400, 0.5, seed=11)
    p = values.mean()
    lo, hi = bootstrap_ci(values)
    expected = 2 * Z95 * math.sqrt(p * (1 - p) / values.size)
    assert hi - lo == pytest.approx(expected, rel=0.1)


def test_bootstrap_constant_values_give_a_point() -> None:
    assert bootstrap_ci([1.0] * 30) == (1.0, 1.0)
    assert bootstrap_ci([0.25]) == (0.25, 0.25)


def test_bootstrap_resample_count_not_a_multiple_of_the_chunk() -> None:
    means = bootstrap_means([0.0, 1.0, 1.0], n_resamples=2503, seed=0)
    assert means.shape == (2503,)
    assert set(np.round(means * 3).astype(int)) <= {0, 1, 2, 3}


@pytest.mark.parametrize(("values", "fragment"), [([], "non-empty"), ([0.5, float("nan")], "finite")])
def test_bootstrap_rejects_bad_values(values: list[float], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        bootstrap_ci(values)


def test_bootstrap_rejects_bad_resample_count() -> None:
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([0.0, 1.0], n_resamples=0)


def test_paired_bootstrap_is_the_bootstrap_of_differences() -> None:
    a = bernoulli(60, 0.4, seed=2)
    b = np.maximum(a, bernoulli(60, 0.2, seed=3))  # b solves everything a does and some more
    lo, hi = paired_bootstrap_diff_ci(a, b, seed=5)
    assert (lo, hi) == bootstrap_ci(b - a, seed=5)
    assert 0.0 <= lo <= b.mean() - a.mean() <= hi
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap_diff_ci([1.0, 0.0], [1.0])


def test_resolve_rate() -> None:
    est = resolve_rate(5, 10)
    assert est.value == 0.5 and est.n == 10 and est.method == "wilson"
    assert (est.lo, est.hi) == wilson(5, 10)
    assert str(est) == "50.0% (95% Wilson CI 23.7..76.3, n=10)"
    assert est.short() == "50.0% (23.7..76.3)"
    assert est.to_dict()["hi"] == pytest.approx(0.7634, abs=1e-4)
    assert resolve_rate(0, 0) == RateEstimate(0.0, 0.0, 1.0, 0)


def test_pass_at_k_estimate() -> None:
    samples = {f"t{i}": (4, i % 5) for i in range(40)}
    est = pass_at_k_estimate(samples, 2, seed=1)
    assert est is not None and est.method == "bootstrap" and est.n == 40
    assert est.lo <= est.value <= est.hi
    assert est == pass_at_k_estimate(samples, 2, seed=1)
    hat = pass_hat_k_estimate(samples, 2, seed=1)
    assert hat is not None and hat.value < est.value
    assert pass_at_k_estimate(samples, 5) is None
    assert pass_hat_k_estimate({}, 1) is None


def test_binary_per_task_outcomes_get_a_wilson_interval_not_a_zero_width_bootstrap() -> None:
    from devloop.stats import pass_at_k_estimate, wilson

    all_solved = {f"t{i}": (1, 1) for i in range(5)}
    est = pass_at_k_estimate(all_solved, 1)
    assert est is not None and est.value == 1.0
    assert (est.lo, est.hi) == pytest.approx(wilson(5, 5))
    assert est.lo < 0.6  # five tasks cannot pin a rate at 100 %
