"""pass@k and pass^k against direct combinatorics."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from devloop.stats import (
    mean_pass_at_k,
    mean_pass_hat_k,
    pass_at_k,
    pass_at_k_per_task,
    pass_hat_k,
    pass_hat_k_per_task,
)


def direct_pass_at_k(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def direct_pass_hat_k(n: int, c: int, k: int) -> float:
    return float(Fraction(math.comb(c, k), math.comb(n, k)))


GRID = [(n, c, k) for n in range(1, 13) for c in range(n + 1) for k in range(1, n + 1)]


@pytest.mark.parametrize(("n", "c", "k"), GRID)
def test_pass_at_k_matches_combinatorics(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(direct_pass_at_k(n, c, k), abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), GRID)
def test_pass_hat_k_matches_combinatorics(n: int, c: int, k: int) -> None:
    assert pass_hat_k(n, c, k) == pytest.approx(direct_pass_hat_k(n, c, k), abs=1e-12)


def test_edge_cases() -> None:
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(5, 1, 5) == 1.0  # k = n: the single success is always drawn
    assert pass_at_k(10, 8, 3) == 1.0  # n - c < k
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    assert pass_hat_k(10, 10, 10) == 1.0
    assert pass_hat_k(10, 9, 10) == 0.0
    assert pass_hat_k(10, 2, 3) == 0.0  # c < k
    assert pass_hat_k(10, 3, 1) == pytest.approx(0.3)


@pytest.mark.parametrize(("c", "k"), [(1, 1), (1, 100), (37, 10), (150, 50), (199, 199), (3, 150)])
def test_large_n_is_stable(c: int, k: int) -> None:
    n = 200
    assert pass_at_k(n, c, k) == pytest.approx(direct_pass_at_k(n, c, k), rel=1e-9, abs=1e-12)
    assert pass_hat_k(n, c, k) == pytest.approx(direct_pass_hat_k(n, c, k), rel=1e-9, abs=1e-300)


def test_very_large_n_does_not_overflow() -> None:
    n, c, k = 5000, 2500, 1000
    assert math.comb(n, k) > 10**308  # the float form of the binomial would overflow
    value = pass_at_k(n, c, k)
    assert value is not None and 0.0 <= value <= 1.0
    assert value == pytest.approx(direct_pass_at_k(n, c, k), abs=1e-12)
    hat = pass_hat_k(n, c, k)
    assert hat is not None and 0.0 <= hat < 1e-100


def test_k_greater_than_n_is_none() -> None:
    assert pass_at_k(3, 1, 4) is None
    assert pass_hat_k(3, 3, 4) is None
    assert pass_at_k(0, 0, 1) is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((5, 6, 1), r"c \(successes\)"),
        ((5, -1, 1), r"c \(successes\)"),
        ((5, 2, 0), "k must"),
        ((-1, 0, 1), "n"),
    ],
)
def test_bad_arguments_raise_one_line(args: tuple[int, int, int], fragment: str) -> None:
    for fn in (pass_at_k, pass_hat_k):
        with pytest.raises(ValueError, match=fragment) as info:
            fn(*args)
        assert "\n" not in str(info.value)


def test_non_integer_rejected() -> None:
    with pytest.raises(ValueError, match="k must be an integer"):
        pass_at_k(5, 2, 1.5)  # type: ignore[arg-type]


def test_per_task_and_mean() -> None:
    samples = {"a": (5, 0), "b": (5, 5), "c": (5, 2)}
    per = pass_at_k_per_task(samples, 2)
    assert per["a"] == 0.0 and per["b"] == 1.0
    assert per["c"] == pytest.approx(direct_pass_at_k(5, 2, 2))
    assert mean_pass_at_k(samples, 2) == pytest.approx((0.0 + 1.0 + direct_pass_at_k(5, 2, 2)) / 3)
    hat = pass_hat_k_per_task(samples, 2)
    assert hat["c"] == pytest.approx(direct_pass_hat_k(5, 2, 2))
    assert mean_pass_hat_k(samples, 2) == pytest.approx((0.0 + 1.0 + direct_pass_hat_k(5, 2, 2)) / 3)


def test_mean_is_none_when_a_task_lacks_k_samples() -> None:
    samples = {"a": (5, 1), "b": (2, 1)}
    assert pass_at_k_per_task(samples, 3) == {"a": pytest.approx(direct_pass_at_k(5, 1, 3)), "b": None}
    assert mean_pass_at_k(samples, 3) is None
    assert mean_pass_hat_k(samples, 3) is None
    assert mean_pass_at_k(samples, 2) is not None
    assert mean_pass_at_k({}, 1) is None


def test_per_task_error_names_the_task() -> None:
    with pytest.raises(ValueError, match="task 'x'"):
        pass_at_k_per_task({"x": (3, 4)}, 1)
    with pytest.raises(ValueError, match="task 'y'"):
        mean_pass_at_k({"y": (3,)}, 1)  # type: ignore[dict-item]
