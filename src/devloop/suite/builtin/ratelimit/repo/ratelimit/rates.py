from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """`limit` events per `period` seconds."""

    limit: int
    period: float

    @property
    def per_second(self) -> float:
        return self.limit / self.period


def parse_rate(text: str) -> Rate:
    """'100/min', '5/s', '1000 / 2h' -> Rate."""
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"invalid rate {text!r}; expected e.g. '10/s', '100/min', '1000/2h'")
    limit = int(match.group(1))
    if limit == 0:
        raise ValueError(f"rate limit must be positive: {text!r}")
    multiple = int(match.group(2) or 1)
    return Rate(limit, multiple * _UNITS[match.group(3)])
