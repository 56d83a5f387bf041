from __future__ import annotations

from collections.abc import Iterable, Iterator


class CycleError(ValueError):
    """The graph has a cycle; `cycle` lists its nodes, first node repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


class DepGraph:
    """A directed graph where an edge a -> b means 'a depends on b'."""

    def __init__(self) -> None:
        self._deps: dict[str, set[str]] = {}
        self._rdeps: dict[str, set[str]] = {}

    @classmethod
    def from_dict(cls, mapping: dict[str, Iterable[str]]) -> DepGraph:
        graph = cls()
        for node, deps in mapping.items():
            graph.add(node, *deps)
        return graph

    def add(self, node: str, *deps: str) -> None:
        self._deps.setdefault(node, set())
        self._rdeps.setdefault(node, set())
        for dep in deps:
            if dep == node:
                raise CycleError([node, node])
            self._deps[node].add(dep)
            self._deps.setdefault(dep, set())
            self._rdeps.setdefault(dep, set()).add(node)

    def remove(self, node: str) -> None:
        for dep in self._deps.pop(node, set()):
            self._rdeps[dep].discard(node)
        for user in self._rdeps.pop(node, set()):
            self._deps[user].discard(node)

    def direct_dependencies(self, node: str) -> set[str]:
        self._check(node)
        return set(self._deps[node])

    def direct_dependents(self, node: str) -> set[str]:
        self._check(node)
        return set(self._rdeps[node])

    def __contains__(self, node: object) -> bool:
        return node in self._deps

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._deps))

    def __len__(self) -> int:
        return len(self._deps)

    def edges(self) -> list[tuple[str, str]]:
        return sorted((a, b) for a, deps in self._deps.items() for b in deps)

    def _check(self, node: str) -> None:
        if node not in self._deps:
            raise KeyError(f"unknown node {node!r}")
