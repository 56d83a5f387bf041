"""Statistics for evaluation runs: pass@k / pass^k, confidence intervals, comparison, and how to write them.

Pure math on counts and task-id sets; reading runs from disk is `devloop.reports`. Every rate comes with a
95 % interval by default: Wilson for a single proportion, a seeded percentile bootstrap over tasks for
averages, a paired bootstrap for the difference between two runs.
"""

from devloop.stats.compare import Comparison, compare_outcomes, mcnemar_exact
from devloop.stats.estimators import (
    Samples,
    mean_pass_at_k,
    mean_pass_hat_k,
    pass_at_k,
    pass_at_k_per_task,
    pass_hat_k,
    pass_hat_k_per_task,
)
from devloop.stats.formatting import ci_label, interval_text, methods_note, rate_text
from devloop.stats.intervals import bootstrap_ci, bootstrap_means, paired_bootstrap_diff_ci, wilson
from devloop.stats.summary import RateEstimate, pass_at_k_estimate, pass_hat_k_estimate, resolve_rate

__all__ = [
    "Comparison",
    "RateEstimate",
    "Samples",
    "bootstrap_ci",
    "bootstrap_means",
    "ci_label",
    "compare_outcomes",
    "interval_text",
    "mcnemar_exact",
    "mean_pass_at_k",
    "mean_pass_hat_k",
    "methods_note",
    "paired_bootstrap_diff_ci",
    "pass_at_k",
    "pass_at_k_estimate",
    "pass_at_k_per_task",
    "pass_hat_k",
    "pass_hat_k_estimate",
    "pass_hat_k_per_task",
    "rate_text",
    "resolve_rate",
    "wilson",
]
