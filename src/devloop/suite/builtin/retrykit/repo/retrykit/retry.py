from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from retrykit.errors import RetryError
from retrykit.policy import RetryPolicy

T = TypeVar("T")
OnRetry = Callable[[int, BaseException, float], None]


def call_with_retry(
    func: Callable[[], T],
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: OnRetry | None = None,
) -> T:
    """Call `func` until it succeeds or the policy gives up.

    Non-retryable exceptions propagate at once. When attempts run out, RetryError is raised from the
    last exception. `on_retry(attempt, exc, delay)` is called before each sleep.
    """
    policy = policy or RetryPolicy()
    delays = policy.delays()
    for attempt in range(1, policy.attempts + 1):
        try:
            return func()
        except BaseException as exc:
            if not policy.retryable(exc):
                raise
            if attempt == policy.attempts:
                raise RetryError(attempt, exc) from exc
            delay = next(delays)
            if on_retry:
                on_retry(attempt, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def retry(
    attempts: int = 3,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    base: float = 0.1,
    factor: float = 2.0,
    jitter: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: OnRetry | None = None,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator form of call_with_retry; each call of the wrapped function gets fresh backoff."""

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            policy = RetryPolicy(attempts, retry_on, base, factor, jitter)
            return call_with_retry(lambda: func(*args, **kwargs), policy, sleep, on_retry)

        return wrapper

    return decorate
