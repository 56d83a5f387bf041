from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from jobq.job import Job
from jobq.stats import PoolStats


class PoolClosed(RuntimeError):
    """The pool is shut down and accepts no more jobs."""


_STOP = None


class WorkerPool:
    """Runs submitted jobs on `workers` threads, highest priority (lowest number) first."""

    def __init__(self, workers: int = 4, name: str = "jobq") -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._queue: queue.PriorityQueue[tuple[int, int, Job | None]] = queue.PriorityQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.stats = PoolStats()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = 0, **kwargs: Any) -> Job:
        job = Job(fn, *args, priority=priority, **kwargs)
        with self._lock:
            if self._closed:
                raise PoolClosed("cannot submit to a pool that is shut down")
            self.stats.submitted += 1
            self._queue.put((job.priority, job.id, job))
        return job

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is _STOP:
                return
            started = time.perf_counter()
            job.run()
            self.stats.record(job, time.perf_counter() - started)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has finished; returns False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._queue.empty():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stop accepting jobs; optionally cancel queued ones; stop the workers after the queue drains."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if cancel_pending:
            for _, _, job in list(self._queue.queue):
                if job is not None:
                    job.cancel()
        for _ in self._threads:
            # Sorts after every real job, so workers finish the queue first.
            self._queue.put((2**62, 2**62, _STOP))
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)
