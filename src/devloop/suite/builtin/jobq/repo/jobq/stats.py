from __future__ import annotations

import threading
from dataclasses import dataclass, field

from jobq.job import Job, JobStatus


@dataclass
class PoolStats:
    submitted: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    busy_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, job: Job, seconds: float) -> None:
        with self._lock:
            self.busy_seconds += seconds
            if job.status is JobStatus.DONE:
                self.done += 1
            elif job.status is JobStatus.FAILED:
                self.failed += 1
            elif job.status is JobStatus.CANCELLED:
                self.cancelled += 1

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cancelled
