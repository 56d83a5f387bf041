from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventbus.errors import HandlerErrors
from eventbus.topics import topic_matches, validate_topic

Handler = Callable[[str, Any], Any]
_order = itertools.count()


@dataclass(order=True)
class Subscription:
    # Higher priority first; equal priorities in subscription order.
    sort_key: tuple[int, int] = field(init=False, repr=False)
    pattern: str = field(compare=False)
    handler: Handler = field(compare=False)
    priority: int = field(default=0, compare=False)
    once: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        self.sort_key = (-self.priority, next(_order))

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))


class EventBus:
    def __init__(self, raise_errors: bool = True) -> None:
        self._subs: list[Subscription] = []
        self.raise_errors = raise_errors
        self.dead_letters: list[tuple[str, Any]] = []

    def subscribe(self, pattern: str, handler: Handler, priority: int = 0, once: bool = False) -> Subscription:
        sub = Subscription(validate_topic(pattern, pattern=True), handler, priority, once)
        self._subs.append(sub)
        self._subs.sort()
        return sub

    def on(self, pattern: str, priority: int = 0) -> Callable[[Handler], Handler]:
        """Decorator form of subscribe."""

        def decorate(handler: Handler) -> Handler:
            self.subscribe(pattern, handler, priority)
            return handler

        return decorate

    def unsubscribe(self, sub: Subscription) -> bool:
        try:
            self._subs.remove(sub)
            return True
        except ValueError:
            return False

    def subscribers(self, topic: str) -> list[Subscription]:
        return [s for s in self._subs if topic_matches(s.pattern, topic)]

    def emit(self, topic: str, payload: Any = None) -> int:
        """Deliver to every matching handler in priority order; returns how many handlers ran.

        Handler exceptions are collected and raised together as HandlerErrors after all handlers ran
        (or ignored when raise_errors is False). Events nobody listens to go to `dead_letters`.
        """
        validate_topic(topic)
        errors: list[tuple[str, BaseException]] = []
        delivered = 0
        for sub in self._subs:
            if not topic_matches(sub.pattern, topic):
                continue
            if sub.once:
                self.unsubscribe(sub)
            delivered += 1
            try:
                sub.handler(topic, payload)
            except Exception as exc:
                errors.append((sub.name, exc))
        if not delivered:
            self.dead_letters.append((topic, payload))
        if errors and self.raise_errors:
            raise HandlerErrors(topic, errors)
        return delivered
