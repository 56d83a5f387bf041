import threading

import pytest

from lrukit import LRUCache, TTLCache


def test_evicts_least_recently_used():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache.stats.evictions == 1


def test_on_evict_callback_may_use_cache():
    seen = []
    cache = LRUCache(1, on_evict=lambda k, v: seen.append((k, v, len(cache))))
    cache.put("a", 1)
    cache.put("b", 2)
    assert seen == [("a", 1, 1)]


def test_stats():
    cache = LRUCache(4)
    cache.put("a", 1)
    cache.get("a")
    cache.get("zzz")
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert cache.stats.hit_rate == 0.5


def test_invalid_size():
    with pytest.raises(ValueError):
        LRUCache(0)


def test_get_or_compute_caches():
    cache = LRUCache(4)
    calls = []
    assert cache.get_or_compute("k", lambda: calls.append(1) or 42) == 42
    assert cache.get_or_compute("k", lambda: calls.append(1) or 43) == 42
    assert len(calls) == 1


def test_factory_error_is_not_cached():
    cache = LRUCache(4)

    def boom():
        raise KeyError("nope")

    with pytest.raises(KeyError):
        cache.get_or_compute("k", boom)
    assert cache.get_or_compute("k", lambda: 7) == 7


def test_other_keys_not_blocked_by_slow_factory():
    cache = LRUCache(4)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return "slow"

    t = threading.Thread(target=cache.get_or_compute, args=("slow", slow))
    t.start()
    assert started.wait(5)
    assert cache.get_or_compute("fast", lambda: "fast") == "fast"
    release.set()
    t.join(5)
    assert cache.get("slow") == "slow"


def test_ttl_expiry():
    now = [100.0]
    cache = TTLCache(4, ttl=10, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] = 109.9
    assert cache.get("a") == 1
    now[0] = 110.0
    assert cache.get("a") is None
    cache.put("b", 2)
    now[0] = 200
    assert cache.purge() == 1
