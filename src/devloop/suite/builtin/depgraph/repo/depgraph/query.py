from __future__ import annotations

from depgraph.graph import DepGraph
from depgraph.toposort import toposort


def all_dependencies(graph: DepGraph, node: str) -> set[str]:
    """Every node that `node` depends on, directly or transitively."""
    result: set[str] = set()
    for dep in graph.direct_dependencies(node):
        result.add(dep)
        result |= all_dependencies(graph, dep)
    return result


def all_dependents(graph: DepGraph, node: str) -> set[str]:
    """Every node that depends on `node`, directly or transitively (what a change to it affects)."""
    result: set[str] = set()
    for user in graph.direct_dependents(node):
        result.add(user)
        result |= all_dependents(graph, user)
    return result


def build_waves(graph: DepGraph) -> list[list[str]]:
    """Group nodes into waves; every node's dependencies are in earlier waves."""
    level: dict[str, int] = {}
    for node in toposort(graph):
        deps = graph.direct_dependencies(node)
        level[node] = 1 + max((level[d] for d in deps), default=-1)
    waves: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node, n in level.items():
        waves[n].append(node)
    return [sorted(w) for w in waves]
