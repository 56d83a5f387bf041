"""Dependency graphs: toposort, cycle detection, transitive queries."""

from depgraph.graph import CycleError, DepGraph
from depgraph.query import all_dependencies, all_dependents, build_waves
from depgraph.render import to_dot
from depgraph.toposort import find_cycle, toposort

__all__ = [
    "CycleError",
    "DepGraph",
    "all_dependencies",
    "all_dependents",
    "build_waves",
    "find_cycle",
    "to_dot",
    "toposort",
]
