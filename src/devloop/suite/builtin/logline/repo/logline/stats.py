from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from logline.parser import LogRecord


@dataclass
class Summary:
    requests: int = 0
    bytes: int = 0
    status_classes: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    per_minute: Counter[datetime] = field(default_factory=Counter)

    def top_paths(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.paths.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    @property
    def error_rate(self) -> float:
        errors = self.status_classes["5xx"]
        return errors / self.requests if self.requests else 0.0


def summarise(records: Iterable[LogRecord]) -> Summary:
    summary = Summary()
    for rec in records:
        summary.requests += 1
        summary.bytes += rec.size
        summary.status_classes[f"{rec.status // 100}xx"] += 1
        summary.paths[rec.path.split("?", 1)[0]] += 1
        summary.per_minute[rec.time.replace(second=0, microsecond=0)] += 1
    return summary
