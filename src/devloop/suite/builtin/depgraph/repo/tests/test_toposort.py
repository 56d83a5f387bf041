import pytest

from depgraph import CycleError, DepGraph, find_cycle, toposort


def test_order_respects_dependencies():
    g = DepGraph.from_dict({"app": ["lib", "log"], "lib": ["log"], "log": []})
    assert toposort(g) == ["log", "lib", "app"]


def test_ties_broken_by_name():
    g = DepGraph.from_dict({"c": [], "a": [], "b": []})
    assert toposort(g) == ["a", "b", "c"]


def test_cycle_reported():
    g = DepGraph.from_dict({"a": ["b"], "b": ["c"], "c": ["a"]})
    with pytest.raises(CycleError) as info:
        toposort(g)
    assert info.value.cycle == ["a", "b", "c", "a"]


def test_self_dependency():
    with pytest.raises(CycleError):
        DepGraph().add("a", "a")


def test_no_cycle():
    assert find_cycle(DepGraph.from_dict({"a": ["b"], "b": []})) is None


def test_remove_node():
    g = DepGraph.from_dict({"a": ["b"], "b": ["c"], "c": []})
    g.remove("b")
    assert g.edges() == []
    assert len(g) == 2
