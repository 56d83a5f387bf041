import pytest

from ratelimit import Rate, RateLimiter, SlidingWindow, parse_rate


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("text,rate", [("10/s", Rate(10, 1)), ("100/min", Rate(100, 60)),
                                       ("1000 / 2h", Rate(1000, 7200))], ids=["per-second", "per-minute", "two-hours"])
def test_parse_rate(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["10", "x/s", "0/s", "5/fortnight"], ids=["no-period", "not-number", "zero", "unknown-unit"])
def test_parse_rate_invalid(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_clients_are_independent():
    clock = FakeClock()
    limiter = RateLimiter("2/s", clock=clock)
    assert limiter.allow("a") and limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")


def test_retry_after():
    clock = FakeClock()
    limiter = RateLimiter("10/s", burst=1, clock=clock)
    limiter.allow("a")
    assert limiter.retry_after("a") == pytest.approx(0.1)


def test_forget_idle():
    clock = FakeClock()
    limiter = RateLimiter("5/s", clock=clock)
    limiter.allow("a")
    clock.now += 10
    assert limiter.forget_idle() == 1


def test_sliding_window():
    clock = FakeClock()
    window = SlidingWindow(2, 10, clock=clock)
    assert window.hit() and window.hit() and not window.hit()
    clock.now = 10
    assert window.hit()
    assert window.remaining() == 1
