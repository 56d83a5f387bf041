import pytest

from eventbus import EventBus, HandlerErrors


def recorder(log, name):
    def handler(topic, payload):
        log.append((name, topic, payload))

    handler.__qualname__ = name
    return handler


def test_delivery_and_wildcards():
    bus, log = EventBus(), []
    bus.subscribe("order.paid", recorder(log, "exact"))
    bus.subscribe("order.*", recorder(log, "star"))
    bus.subscribe("user.#", recorder(log, "hash"))
    assert bus.emit("order.paid", 1) == 2
    assert [name for name, *_ in log] == ["exact", "star"]


def test_priority_order():
    bus, log = EventBus(), []
    bus.subscribe("a", recorder(log, "low"), priority=-1)
    bus.subscribe("a", recorder(log, "high"), priority=10)
    bus.subscribe("a", recorder(log, "mid1"))
    bus.subscribe("a", recorder(log, "mid2"))
    bus.emit("a")
    assert [name for name, *_ in log] == ["high", "mid1", "mid2", "low"]


def test_once_handler_runs_once():
    bus, log = EventBus(), []
    bus.subscribe("a", recorder(log, "once"), once=True)
    bus.emit("a")
    bus.emit("a")
    assert len(log) == 1


def test_errors_collected():
    bus, log = EventBus(), []

    def broken(topic, payload):
        raise RuntimeError("boom")

    bus.subscribe("a", broken, priority=1)
    bus.subscribe("a", recorder(log, "after"))
    with pytest.raises(HandlerErrors, match="boom"):
        bus.emit("a")
    assert log == [("after", "a", None)]


def test_errors_ignored_when_configured():
    bus = EventBus(raise_errors=False)
    bus.subscribe("a", lambda t, p: 1 / 0)
    assert bus.emit("a") == 1


def test_dead_letters():
    bus = EventBus()
    assert bus.emit("nobody.home", "x") == 0
    assert bus.dead_letters == [("nobody.home", "x")]


def test_unsubscribe():
    bus, log = EventBus(), []
    sub = bus.subscribe("a", recorder(log, "x"))
    assert bus.unsubscribe(sub)
    assert not bus.unsubscribe(sub)
    bus.emit("a")
    assert log == []
