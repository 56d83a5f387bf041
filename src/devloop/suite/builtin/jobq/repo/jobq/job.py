from __future__ import annotations

import enum
import itertools
import threading
from collections.abc import Callable
from typing import Any

_ids = itertools.count(1)


class JobStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobFailed(Exception):
    """Raised by Job.result() when the job raised; the original exception is the __cause__."""


class Job:
    """One unit of work. Lower `priority` numbers run first."""

    def __init__(self, fn: Callable[..., Any], *args: Any, priority: int = 0, name: str | None = None, **kwargs: Any):
        self.id = next(_ids)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.priority = priority
        self.name = name or getattr(fn, "__name__", f"job-{self.id}")
        self.status = JobStatus.PENDING
        self._result: Any = None
        self._error: BaseException | None = None
        self._finished = threading.Event()

    def __lt__(self, other: Job) -> bool:
        return (self.priority, self.id) < (other.priority, other.id)

    def run(self) -> None:
        if self.status is JobStatus.CANCELLED:
            self._finished.set()
            return
        self.status = JobStatus.RUNNING
        try:
            self._result = self.fn(*self.args, **self.kwargs)
            self.status = JobStatus.DONE
        except Exception as exc:
            self._error = exc
            self.status = JobStatus.FAILED
        finally:
            self._finished.set()

    def cancel(self) -> bool:
        """Cancel a job that has not started; returns whether it was cancelled."""
        if self.status is JobStatus.PENDING:
            self.status = JobStatus.CANCELLED
            return True
        return False

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        if not self.wait(timeout):
            raise TimeoutError(f"job {self.name} did not finish within {timeout}s")
        if self._error is not None:
            raise JobFailed(f"job {self.name} failed: {self._error}") from self._error
        if self.status is JobStatus.CANCELLED:
            raise JobFailed(f"job {self.name} was cancelled")
        return self._result

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name} {self.status.value}>"
