"""Evaluation protocols: single, iterative (Devstral / OpenHands), samples (pass@k) and best-of-N.

Each protocol is a rule over per-(task, attempt) units (`policy`); `run_protocol` runs the units on an
executor (a local process pool or Ray) and writes a resumable run directory with the harness's
report.json plus the protocol's sections.
"""

from devloop.protocols.best_of import normalise_patch
from devloop.protocols.engine import ProtocolError, ProtocolResult, run_protocol, unit_settings
from devloop.protocols.executors import Executor, ExecutorError, LocalExecutor, RayExecutor, make_executor
from devloop.protocols.policy import PROTOCOLS, ProtocolConfig, chosen_index, pending
from devloop.protocols.summary import k_values, protocol_section
from devloop.protocols.units import Selection, UnitRecord, UnitStore

__all__ = [
    "PROTOCOLS",
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "ProtocolConfig",
    "ProtocolError",
    "ProtocolResult",
    "RayExecutor",
    "Selection",
    "UnitRecord",
    "UnitStore",
    "chosen_index",
    "k_values",
    "make_executor",
    "normalise_patch",
    "pending",
    "protocol_section",
    "run_protocol",
    "unit_settings",
]
