import itertools
import random

import pytest

from retrykit import exponential


def take(it, n):
    return list(itertools.islice(it, n))


def test_exponential_without_jitter():
    assert take(exponential(0.5, 2, jitter=False), 4) == [0.5, 1.0, 2.0, 4.0]


def test_full_jitter_within_bounds():
    delays = take(exponential(1.0, 2, jitter=True, rng=random.Random(7)), 6)
    for n, d in enumerate(delays):
        assert 0 <= d <= 2**n


def test_jitter_is_reproducible_with_seed():
    a = take(exponential(rng=random.Random(1)), 5)
    b = take(exponential(rng=random.Random(1)), 5)
    assert a == b


@pytest.mark.parametrize("kwargs", [{"base": -1}, {"factor": 0.5}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        next(exponential(**kwargs))
