import threading

import pytest

from jobq import JobFailed, JobStatus, PoolClosed, WorkerPool


def test_results():
    with WorkerPool(2) as pool:
        jobs = [pool.submit(pow, 2, n) for n in range(5)]
        assert [job.result(timeout=5) for job in jobs] == [1, 2, 4, 8, 16]


def test_failure_is_captured():
    with WorkerPool(1) as pool:
        job = pool.submit(int, "x")
        with pytest.raises(JobFailed) as info:
            job.result(timeout=5)
    assert isinstance(info.value.__cause__, ValueError)
    assert job.status is JobStatus.FAILED


def test_priority_order_single_worker():
    gate = threading.Event()
    order = []
    with WorkerPool(1) as pool:
        pool.submit(gate.wait, 5)  # keeps the worker busy while the rest is queued
        for prio, name in [(5, "low"), (0, "high"), (2, "mid")]:
            pool.submit(order.append, name, priority=prio)
        gate.set()
    assert order == ["high", "mid", "low"]


def test_submit_after_shutdown():
    pool = WorkerPool(1)
    pool.shutdown()
    with pytest.raises(PoolClosed):
        pool.submit(print)


def test_shutdown_cancels_pending():
    gate = threading.Event()
    pool = WorkerPool(1)
    pool.submit(gate.wait, 5)
    queued = pool.submit(print, "never")
    pool.shutdown(wait=False, cancel_pending=True)
    gate.set()
    assert queued.wait(5)
    assert queued.status is JobStatus.CANCELLED
    with pytest.raises(JobFailed, match="cancelled"):
        queued.result()


def test_stats():
    with WorkerPool(2) as pool:
        pool.submit(int, "1")
        pool.submit(int, "x")
    assert (pool.stats.submitted, pool.stats.done, pool.stats.failed) == (2, 1, 1)


def test_invalid_worker_count():
    with pytest.raises(ValueError):
        WorkerPool(0)
