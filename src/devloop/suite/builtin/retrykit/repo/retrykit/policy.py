from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from retrykit.backoff import exponential


@dataclass
class RetryPolicy:
    """When and how long to wait between attempts."""

    attempts: int = 3
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    base: float = 0.1
    factor: float = 2.0
    jitter: bool = True
    # Return False to stop retrying for an exception that is otherwise retryable.
    should_retry: Callable[[BaseException], bool] | None = None
    rng: random.Random | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, self.retry_on):
            return False
        return self.should_retry(exc) if self.should_retry else True

    def delays(self) -> Iterator[float]:
        return exponential(self.base, self.factor, self.jitter, self.rng)
