from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from lrukit.cache import LRUCache

F = TypeVar("F", bound=Callable[..., Any])


def make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    """A hashable key for a call; keyword order does not matter."""
    return (args, tuple(sorted(kwargs.items()))) if kwargs else args


def memoize(maxsize: int = 128) -> Callable[[F], F]:
    """Cache a function's results in an LRUCache, shared by all threads.

    The wrapped function gains `.cache` (the LRUCache) and `.cache_clear()`.
    """

    def decorate(func: F) -> F:
        cache = LRUCache(maxsize)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = make_key(args, kwargs)
            return cache.get_or_compute(key, lambda: func(*args, **kwargs))

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
