"""Reports over evaluation runs: reading runs, comparison, iteration ablation, report.md/json and plots.

Runs are read through `devloop.eval.rundata` (the run store's reader) and report.json; the numbers
come from `devloop.stats`. matplotlib is imported only when plots are drawn (`devloop.reports.plots`).
"""

from devloop.reports.compare import RunComparison, compare
from devloop.reports.runs import RunReport, load_run

__all__ = ["RunComparison", "RunReport", "compare", "load_run"]
