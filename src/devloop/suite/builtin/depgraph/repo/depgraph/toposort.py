from __future__ import annotations

from depgraph.graph import CycleError, DepGraph


def find_cycle(graph: DepGraph) -> list[str] | None:
    """One cycle in the graph (first node repeated at the end), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = GREY
        stack.append(node)
        for dep in sorted(graph.direct_dependencies(node)):
            if color[dep] == GREY:
                return stack[stack.index(dep):] + [dep]
            if color[dep] == WHITE:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = BLACK
        return None

    for node in graph:
        if color[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return None


def toposort(graph: DepGraph) -> list[str]:
    """Nodes ordered so that every node comes after its dependencies; ties broken by name."""
    remaining = {node: len(graph.direct_dependencies(node)) for node in graph}
    ready = sorted(node for node, count in remaining.items() if count == 0)
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for user in sorted(graph.direct_dependents(node)):
            remaining[user] -= 1
            if remaining[user] == 0:
                ready.append(user)
        ready.sort()
    if len(order) != len(graph):
        raise CycleError(find_cycle(graph) or [])
    return order
