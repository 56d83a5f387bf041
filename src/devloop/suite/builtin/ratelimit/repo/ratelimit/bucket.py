from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Holds up to `capacity` tokens, refilled continuously at `rate` tokens per second.

    Each request takes tokens; when not enough are left it is refused.
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = float(capacity)
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + int(elapsed * self.rate))
        self.updated = now

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take `tokens` if available; never blocks."""
        if tokens > self.capacity:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.capacity}")
        with self._lock:
            self._refill()
            if self.tokens >= tokens:
                self.tokens -= tokens
                return True
            return False

    def wait_time(self, tokens: float = 1) -> float:
        """Seconds until `tokens` could be taken (0 if now)."""
        with self._lock:
            self._refill()
            missing = tokens - self.tokens
            return max(0.0, missing / self.rate)

    def available(self) -> float:
        with self._lock:
            self._refill()
            return self.tokens
