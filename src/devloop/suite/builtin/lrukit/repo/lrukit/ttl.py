from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from lrukit.cache import _MISSING, LRUCache


class TTLCache(LRUCache):
    """An LRU cache whose entries also expire `ttl` seconds after they were stored."""

    def __init__(self, maxsize: int = 128, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(maxsize)
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.clock = clock
        self._expires: dict[Hashable, float] = {}

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._expires[key] = self.clock() + self.ttl
        super().put(key, value)

    def _lookup(self, key: Hashable) -> Any:
        expires = self._expires.get(key)
        if expires is not None and self.clock() >= expires:
            self._data.pop(key, None)
            del self._expires[key]
        return super()._lookup(key)

    def purge(self) -> int:
        """Drop every expired entry; returns how many were dropped."""
        now = self.clock()
        with self._lock:
            dead = [k for k, t in self._expires.items() if now >= t]
            for key in dead:
                self._data.pop(key, None)
                del self._expires[key]
        return len(dead)

    def _missing(self) -> object:
        return _MISSING
