from lrukit import memoize


def test_memoize_caches_per_arguments():
    calls = []

    @memoize(maxsize=8)
    def square(x, scale=1):
        calls.append(x)
        return x * x * scale

    assert square(3) == 9
    assert square(3) == 9
    assert square(3, scale=2) == 18
    assert calls == [3, 3]
    assert square.cache.stats.hits == 1


def test_cache_clear():
    @memoize()
    def ident(x):
        return object()

    first = ident(1)
    ident.cache_clear()
    assert ident(1) is not first
