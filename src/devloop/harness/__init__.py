"""The evaluation harness: SWE-bench-compatible grading without Docker.

`run_eval` grades predictions (or an agent's patches) on tasks and writes a run directory;
`grade` grades one patch; `EnvironmentManager` builds and caches the test environments;
`log_parsers` reads pytest, sympy and JUnit logs; `oracle` scripts the agent from the gold patch.
"""

from devloop.harness.envs import (
    EnvBuildError,
    EnvError,
    EnvironmentManager,
    PythonNotFound,
    default_cache_dir,
)
from devloop.harness.grading import DEFAULT_TEST_TIMEOUT, NO_ENVIRONMENT, grade
from devloop.harness.log_parsers import PARSERS, TestStatus, parse_log
from devloop.harness.runner import Agent, cpu_workers, default_run_id, evaluate_instance, run_eval
from devloop.harness.source import SourceError, apply_patch, extract
from devloop.harness.store import Report, RunStore
from devloop.harness.ui import print_summary, summary_table
from devloop.harness.verdict import Category, Resolution, Verdict

__all__ = [
    "DEFAULT_TEST_TIMEOUT",
    "NO_ENVIRONMENT",
    "PARSERS",
    "Agent",
    "Category",
    "EnvBuildError",
    "EnvError",
    "EnvironmentManager",
    "PythonNotFound",
    "Report",
    "Resolution",
    "RunStore",
    "SourceError",
    "TestStatus",
    "Verdict",
    "apply_patch",
    "cpu_workers",
    "default_cache_dir",
    "default_run_id",
    "evaluate_instance",
    "extract",
    "grade",
    "parse_log",
    "print_summary",
    "run_eval",
    "summary_table",
]
