import pytest

from ratelimit import TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_burst_then_refused():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, capacity=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_refills_over_time():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=2, clock=clock)
    bucket.try_acquire(2)
    clock.now += 1
    assert bucket.try_acquire(2)


def test_never_above_capacity():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock)
    clock.now += 100
    assert bucket.available() == 5


def test_wait_time():
    clock = FakeClock()
    bucket = TokenBucket(rate=4, capacity=4, clock=clock)
    bucket.try_acquire(4)
    assert bucket.wait_time(2) == 0.5


def test_clock_going_backwards_is_ignored():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    bucket.try_acquire()
    clock.now -= 50
    assert not bucket.try_acquire()


def test_too_many_tokens():
    with pytest.raises(ValueError):
        TokenBucket(1, 2).try_acquire(3)
