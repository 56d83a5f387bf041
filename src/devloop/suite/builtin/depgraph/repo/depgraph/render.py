from __future__ import annotations

from depgraph.graph import DepGraph


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: DepGraph, name: str = "deps", highlight: set[str] | None = None) -> str:
    """Graphviz source; nodes in `highlight` are filled."""
    lines = [f"digraph {_quote(name)} {{"]
    for node in graph:
        style = " [style=filled]" if highlight and node in highlight else ""
        lines.append(f"  {_quote(node)}{style};")
    for a, b in graph.edges():
        lines.append(f"  {_quote(a)} -> {_quote(b)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
