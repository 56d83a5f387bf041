"""Background jobs on a pool of worker threads."""

from jobq.job import Job, JobFailed, JobStatus
from jobq.pool import PoolClosed, WorkerPool

__all__ = ["Job", "JobFailed", "JobStatus", "PoolClosed", "WorkerPool"]
