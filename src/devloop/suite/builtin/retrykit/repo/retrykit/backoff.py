from __future__ import annotations

import random
from collections.abc import Iterator


def exponential(
    base: float = 0.1,
    factor: float = 2.0,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Endless delays: base, base*factor, base*factor**2, ...

    With `jitter`, each delay is drawn uniformly from [0, delay] ("full jitter"), which spreads out
    clients that failed at the same moment.
    """
    if base < 0:
        raise ValueError("base must not be negative")
    if factor < 1:
        raise ValueError("factor must be at least 1")
    rng = rng or random.Random()
    attempt = 0
    while True:
        delay = base * factor**attempt
        yield rng.uniform(0, delay) if jitter else delay
        attempt += 1
