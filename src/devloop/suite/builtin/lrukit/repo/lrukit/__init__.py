"""Thread-safe LRU/TTL caches and a memoize decorator."""

from lrukit.cache import LRUCache
from lrukit.decorators import memoize
from lrukit.stats import CacheStats
from lrukit.ttl import TTLCache

__all__ = ["CacheStats", "LRUCache", "TTLCache", "memoize"]
