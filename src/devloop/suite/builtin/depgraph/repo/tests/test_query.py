import pytest

from depgraph import DepGraph, all_dependencies, all_dependents, build_waves, to_dot


@pytest.fixture
def graph():
    return DepGraph.from_dict({
        "app": ["web", "db"],
        "web": ["http", "log"],
        "db": ["log"],
        "http": ["log"],
        "log": [],
    })


def test_all_dependencies(graph):
    assert all_dependencies(graph, "app") == {"web", "db", "http", "log"}
    assert all_dependencies(graph, "log") == set()


def test_all_dependents(graph):
    assert all_dependents(graph, "log") == {"app", "web", "db", "http"}


def test_unknown_node(graph):
    with pytest.raises(KeyError, match="nope"):
        all_dependencies(graph, "nope")


def test_build_waves(graph):
    assert build_waves(graph) == [["log"], ["db", "http"], ["web"], ["app"]]


def test_dot(graph):
    dot = to_dot(graph, highlight={"log"})
    assert '"log" [style=filled];' in dot
    assert '"app" -> "db";' in dot
