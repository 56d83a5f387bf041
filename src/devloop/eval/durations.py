"""How long each instance took last time, to start the longest first on the next run.

With several workers a run ends when its slowest worker does: an instance of seconds started last keeps
one worker busy while the others wait. Ordering the queue longest first (known durations, from earlier
runs with the same cache) lets the short ones fill in around it. The durations are the host's own clock
around each job, kept per instance and per kind of job (grading or an agent run) in the environment
cache's `durations.json`; instances never seen keep the suite's order and go first. It is only a hint:
a missing, unreadable or malformed file means the suite's order, and one run's write replaces the last.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

FILE = "durations.json"
_MAX_ENTRIES = 50_000  # a hint file, not a log: the oldest entries go past this


def load(cache: Path) -> dict[str, float]:
    try:
        data = json.loads((cache / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    }


def longest_first(ids: Sequence[str], kind: str, known: Mapping[str, float]) -> list[str]:
    """`ids` with those never timed first (in their order), then the rest by duration, longest first."""
    unknown = [i for i in ids if f"{kind}:{i}" not in known]
    timed = sorted((i for i in ids if f"{kind}:{i}" in known), key=lambda i: -known[f"{kind}:{i}"])
    return unknown + timed


def save(cache: Path, kind: str, observed: Mapping[str, float]) -> None:
    """Merge this run's durations into the file (atomically; a failure to write is ignored)."""
    if not observed:
        return
    merged = load(cache)
    for iid, seconds in observed.items():
        merged.pop(f"{kind}:{iid}", None)  # re-inserted last: the newest survive the cap
        merged[f"{kind}:{iid}"] = round(seconds, 3)
    if len(merged) > _MAX_ENTRIES:
        merged = dict(list(merged.items())[-_MAX_ENTRIES:])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".durations.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(merged, f, separators=(",", ":"))
        os.replace(tmp, cache / FILE)
    except OSError:
        pass
