"""Evaluation: SWE-bench-compatible grading without Docker, and the protocols that run the agent.

`grade` grades one patch; `EnvironmentManager` builds and caches the test environments; `run_protocol`
runs a protocol's attempts on an executor (local pool or Ray) and writes a resumable run directory;
`log_parsers` reads pytest, sympy and JUnit logs; `oracle` scripts the agent from the gold patch.
"""

from devloop.eval.attempt import AttemptJob, HarnessSettings, run_attempt
from devloop.eval.best_of import normalise_patch
from devloop.eval.checkout import NO_ENVIRONMENT
from devloop.eval.engine import Progress, ProtocolError, ProtocolResult, run_protocol, unit_settings
from devloop.eval.envs import EnvBuildError, EnvError, EnvironmentManager, PythonNotFound, default_cache_dir
from devloop.eval.executors import Executor, ExecutorError, LocalExecutor, RayExecutor, make_executor
from devloop.eval.grading import DEFAULT_TEST_TIMEOUT, grade
from devloop.eval.protocols import PROTOCOLS, ProtocolConfig, chosen_index, pending
from devloop.eval.records import Selection, UnitRecord
from devloop.eval.sections import k_values, protocol_section
from devloop.eval.source import SourceError, apply_patch, extract
from devloop.eval.store import Report, RunStore, UnitStore
from devloop.eval.verdict import Category, Resolution, Verdict
from devloop.parse.log_parsers import PARSERS, TestStatus, parse_log

__all__ = [
    "DEFAULT_TEST_TIMEOUT",
    "NO_ENVIRONMENT",
    "PARSERS",
    "PROTOCOLS",
    "AttemptJob",
    "Category",
    "EnvBuildError",
    "EnvError",
    "EnvironmentManager",
    "Executor",
    "HarnessSettings",
    "ExecutorError",
    "LocalExecutor",
    "Progress",
    "ProtocolConfig",
    "ProtocolError",
    "ProtocolResult",
    "PythonNotFound",
    "RayExecutor",
    "Report",
    "Resolution",
    "RunStore",
    "Selection",
    "SourceError",
    "TestStatus",
    "UnitRecord",
    "UnitStore",
    "Verdict",
    "apply_patch",
    "chosen_index",
    "default_cache_dir",
    "extract",
    "grade",
    "k_values",
    "make_executor",
    "normalise_patch",
    "parse_log",
    "pending",
    "protocol_section",
    "run_attempt",
    "run_protocol",
    "unit_settings",
]
