"""Statistics for evaluation runs: pass@k / pass^k, confidence intervals, and run comparison.

Every rate comes with a 95 % interval by default: Wilson for a single proportion, a seeded percentile
bootstrap over tasks for averages, a paired bootstrap for the difference between two runs.
"""

from devloop.stats.compare import Comparison, compare, mcnemar_exact
from devloop.stats.estimators import (
    Samples,
    mean_pass_at_k,
    mean_pass_hat_k,
    pass_at_k,
    pass_at_k_per_task,
    pass_hat_k,
    pass_hat_k_per_task,
)
from devloop.stats.intervals import bootstrap_ci, bootstrap_means, paired_bootstrap_diff_ci, wilson
from devloop.stats.runs import RunReport, load_run
from devloop.stats.summary import RateEstimate, pass_at_k_estimate, pass_hat_k_estimate, resolve_rate

__all__ = [
    "Comparison",
    "RateEstimate",
    "RunReport",
    "Samples",
    "bootstrap_ci",
    "bootstrap_means",
    "compare",
    "load_run",
    "mcnemar_exact",
    "mean_pass_at_k",
    "mean_pass_hat_k",
    "paired_bootstrap_diff_ci",
    "pass_at_k",
    "pass_at_k_estimate",
    "pass_at_k_per_task",
    "pass_hat_k",
    "pass_hat_k_estimate",
    "pass_hat_k_per_task",
    "resolve_rate",
    "wilson",
]
