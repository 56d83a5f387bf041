from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from ratelimit.bucket import TokenBucket
from ratelimit.rates import Rate, parse_rate


class RateLimiter:
    """One token bucket per client key. `burst` defaults to the rate's limit."""

    def __init__(
        self, rate: Rate | str, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = parse_rate(rate) if isinstance(rate, str) else rate
        self.burst = burst if burst is not None else self.rate.limit
        self.clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: Hashable) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(self.rate.per_second, self.burst, self.clock)
                self._buckets[key] = bucket
            return bucket

    def allow(self, key: Hashable, cost: float = 1) -> bool:
        return self._bucket(key).try_acquire(cost)

    def retry_after(self, key: Hashable, cost: float = 1) -> float:
        """Seconds the client should wait before retrying (for a Retry-After header)."""
        return self._bucket(key).wait_time(cost)

    def forget_idle(self) -> int:
        """Drop buckets that are full again (idle clients); returns how many were dropped."""
        with self._lock:
            idle = [k for k, b in self._buckets.items() if b.available() >= b.capacity]
            for key in idle:
                del self._buckets[key]
        return len(idle)
