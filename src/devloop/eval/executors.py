"""Executors run protocol jobs and hand back `concurrent.futures.Future`s, whatever runs them.

* `LocalExecutor`: a process pool (`workers` > 1; its workers die with this process, even on SIGKILL)
  or this process (`workers` == 1, no pickling).
* `RayExecutor`: Ray tasks on a cluster (`address`) or a Ray instance started here (tests, one machine).

The scheduler only submits and waits on futures, so the same units give the same report whichever ran
them. `capacity` is how many jobs to keep in flight: more would only queue (and be lost on a kill).
`prefetch` (local only): each grading stages the tree of the one the scheduler names to come next in
the same process while its own tests run (eval/prefetch.py).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from devloop.runtime.lifetime import worker_pool

T = TypeVar("T")

EXECUTORS = ("local", "ray")


class ExecutorError(Exception):
    """The executor could not start (Ray missing, cluster unreachable); the message is one line."""


class Executor(Protocol):
    capacity: int
    prefetch: bool

    def submit(self, fn: Callable[[Any], T], arg: Any) -> Future[T]: ...

    def close(self, cancel: bool = False) -> None: ...


class LocalExecutor:
    """Jobs in a process pool of `workers` processes, or inline in this process for one worker."""

    def __init__(self, workers: int = 1, *, prefetch: bool = True):
        self.capacity = max(1, workers)
        self.prefetch = prefetch
        self._pool = worker_pool(workers) if workers > 1 else None

    def submit(self, fn: Callable[[Any], T], arg: Any) -> Future[T]:
        if self._pool is not None:
            return self._pool.submit(fn, arg)
        future: Future[T] = Future()
        try:
            future.set_result(fn(arg))
        except Exception as exc:  # the job functions never raise; anything else is a bug worth surfacing
            future.set_exception(exc)
        return future

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        else:
            from devloop.eval.prefetch import PREFETCH  # grading's modules: loaded by the jobs already

            PREFETCH.discard()  # a tree staged for a grading that never came


class RayExecutor:
    """Jobs as Ray tasks (one CPU each). With no `address`, starts a private Ray instance with `workers`
    CPUs on this machine; with one ("auto", "ray://host:10001", ...) joins that cluster."""

    def __init__(self, workers: int = 1, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install 'devloop[ray]'") from None
        self._ray = ray
        self.prefetch = False  # a Ray worker's next task is not the scheduler's to name
        self._started = not ray.is_initialized()
        if self._started:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, include_dashboard=False)
                else:
                    ray.init(num_cpus=max(1, workers), log_to_driver=False, include_dashboard=False,
                             configure_logging=False)  # fmt: skip
            except Exception as exc:
                where = f"at {address}" if address else "locally"
                raise ExecutorError(f"cannot start Ray {where}: {exc}".splitlines()[0]) from None
        cpus = int(ray.cluster_resources().get("CPU", workers))  # type: ignore[no-untyped-call]
        self.capacity = max(1, cpus if address else min(cpus, workers))
        self._remotes: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[[Any], T], arg: Any) -> Future[T]:
        remote = self._remotes.get(fn)
        if remote is None:
            # max_retries=0: a unit whose worker died is left undone for resume, as with the local pool.
            remote = self._remotes[fn] = self._ray.remote(num_cpus=1, max_retries=0)(fn)
        return remote.remote(arg).future()

    def close(self, cancel: bool = False) -> None:
        if self._started:
            self._ray.shutdown()


def make_executor(
    kind: str, workers: int = 1, address: str | None = None, *, prefetch: bool = True
) -> Executor:
    """The executor named `kind` ("local" or "ray"); `prefetch` for the local one. Raises ExecutorError
    naming what is wrong."""
    if kind == "local":
        if address:
            raise ExecutorError("--ray-address needs --executor ray")
        return LocalExecutor(workers, prefetch=prefetch)
    if kind == "ray":
        return RayExecutor(workers, address)
    raise ExecutorError(f"unknown executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
