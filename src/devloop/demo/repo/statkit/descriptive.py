"""Descriptive statistics over sequences of numbers."""

from collections import Counter


def _require_data(values):
    data = list(values)
    if not data:
        raise ValueError("statistics of an empty sequence are undefined")
    return data


def mean(values):
    data = _require_data(values)
    return sum(data) / len(data)


def median(values):
    data = sorted(_require_data(values))
    middle = len(data) // 2
    return data[middle]


def mode(values):
    data = _require_data(values)
    counts = Counter(data)
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)


def variance(values):
    data = _require_data(values)
    if len(data) < 2:
        raise ValueError("variance needs at least two values")
    centre = mean(data)
    return sum((x - centre) ** 2 for x in data) / (len(data) - 1)
