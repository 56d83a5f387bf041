"""Pool workers die with the process that made the pool, even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devloop.runtime.lifetime import worker_pool

# The parent: a pool of two workers, made (and first used) in the main thread or in a thread that then
# ends; each job writes its worker's pid and sleeps. The parent prints "ok" once a job submitted after
# that thread ended has finished, then waits to be killed.
PARENT = textwrap.dedent("""
    import os, sys, threading, time
    from pathlib import Path
    from devloop.runtime.lifetime import worker_pool

    def job(path):
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(120)

    def quick(_):
        return os.getpid()

    pids_file, mode = sys.argv[1], sys.argv[2]
    box = {}
    def make():
        box["pool"] = worker_pool(2)
        box["pool"].submit(quick, None).result()
    if mode == "thread":
        maker = threading.Thread(target=make)
        maker.start()
        maker.join()  # the thread that forked the workers is gone now
        time.sleep(0.5)
    else:
        make()
    pool = box["pool"]
    assert pool.submit(quick, None).result(timeout=30)  # the workers outlived the thread
    for _ in range(2):
        pool.submit(job, pids_file)
    print("ok", flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


@pytest.mark.parametrize("mode", ["main", "thread"])
def test_workers_die_when_the_parent_is_killed(tmp_path: Path, mode: str) -> None:
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pids_file), mode], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ok"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_read_pids(pids_file)) < 2:
            time.sleep(0.02)
        workers = _read_pids(pids_file)
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.02)
        assert not any(_alive(pid) for pid in workers), f"workers {workers} outlived their parent"
    finally:
        parent.kill()
        for pid in _read_pids(pids_file):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(word) for word in path.read_text().split()]
    except OSError:
        return []


def _square(n: int) -> int:
    return n * n


def test_worker_pool_runs_jobs() -> None:
    with worker_pool(2) as pool:
        assert sorted(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
