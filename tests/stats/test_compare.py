"""McNemar's exact test and the pure comparison of two runs' outcome sets (no files involved)."""

from __future__ import annotations

import json

import pytest

from devloop.stats import compare_outcomes, mcnemar_exact


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


@pytest.mark.parametrize(
    ("a_only", "b_only"), [(0, 0), (0, 7), (7, 0), (3, 5), (10, 10), (1, 20), (40, 61), (2000, 2100)]
)
def test_mcnemar_matches_scipy(a_only: int, b_only: int) -> None:
    binomtest = pytest.importorskip("scipy.stats").binomtest
    n = a_only + b_only
    expected = 1.0 if n == 0 else binomtest(b_only, n, 0.5).pvalue
    assert mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_hand_computed() -> None:
    assert mcnemar_exact(0, 7) == pytest.approx(2 / 128)
    assert mcnemar_exact(1, 8) == pytest.approx(2 * 10 / 512)
    assert mcnemar_exact(2000, 2100) < 0.2  # large counts stay exact, no overflow
    with pytest.raises(ValueError, match="b_only"):
        mcnemar_exact(1, -1)


def test_compare_outcomes_counts_ci_and_verdict() -> None:
    both, b_only, neither = ids("both", 10), ids("bonly", 7), ids("neither", 23)
    ran_a = set(both + b_only + neither + ["extra-a"])
    ran_b = set(both + b_only + neither)
    result = compare_outcomes(ran_a, set(both) | {"extra-a"}, ran_b, set(both + b_only), seed=3)
    assert (result.shared, result.both, result.a_only, result.b_only, result.neither) == (40, 10, 0, 7, 23)
    assert result.only_ran_a == 1 and result.only_ran_b == 0 and result.net == 7
    assert result.p_value == pytest.approx(2 / 128) and result.significant
    assert result.diff == pytest.approx(7 / 40)
    assert result.diff_ci is not None and 0.0 < result.diff_ci[0] < result.diff < result.diff_ci[1]
    lo, hi = result.diff_ci
    assert result.verdict() == (
        f"B resolves 7 more of 40 shared tasks: +17.5 pts (95% paired bootstrap CI {100 * lo:+.1f}..{100 * hi:+.1f})"
        "; McNemar exact p=0.0156: significant at 0.05"
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["a"] == {"label": "A", "ran": 41, "resolved": 11, "shared_rate": result.rate_a.to_dict()}
    assert data["ci_method"] == "paired_bootstrap_percentile" and "left out" in data["notes"][0]


def test_a_resolved_id_outside_ran_counts_as_ran() -> None:
    result = compare_outcomes(set(), {"x"}, {"x"}, set())
    assert result.shared == 1 and result.a_only == 1 and result.diff == -1.0


def test_compare_outcomes_disjoint_and_bad_alpha() -> None:
    result = compare_outcomes({"x"}, {"x"}, {"y"}, {"y"})
    assert result.shared == 0 and result.diff_ci is None and not result.significant
    assert "no tasks in common" in result.verdict()
    with pytest.raises(ValueError, match="alpha"):
        compare_outcomes({"x"}, set(), {"x"}, set(), alpha=0.0)
