"""How long creating a small file takes in the temp dir right now: devloop's runs create files there
(a workspace's checkout and git dirs, one output file per command) and the floors create none, so on a
disk whose metadata operations slow down in bursts (ext4 mounted with `discard` on a virtual disk, say)
their ratios move with it. The benchmarks print this beside their ratios."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path


def file_create_ms(where: Path | None = None, n: int = 50) -> float:
    """Median milliseconds to create, write 3 KB to and close one new file in `where` (default: the
    temp dir devloop uses); the files are removed afterwards, outside the timing."""
    holder = Path(tempfile.mkdtemp(prefix="diskprobe-", dir=where))
    data = b"x" * 3000
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            fd = os.open(holder / f"f{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.write(fd, data)
            os.close(fd)
            times.append(time.perf_counter() - t0)
    finally:
        for i in range(n):
            (holder / f"f{i}").unlink(missing_ok=True)
        holder.rmdir()
    return statistics.median(times) * 1e3


def describe(probes: list[float]) -> str:
    """One line for a report: the median of the probes taken and their spread."""
    return (
        f"temp dir ({tempfile.gettempdir()}): creating a 3 KB file took {statistics.median(probes):.3f} ms "
        f"(median of {len(probes)} probes between rounds, spread {min(probes):.3f}-{max(probes):.3f})"
    )


def busy_cpu_s() -> float:
    """CPU seconds this machine has spent busy since boot, all cores (user, nice, system, irq, softirq
    from /proc/stat): the difference across a run is the CPU it used, its children, sandboxes and
    anything they left behind included, which per-process accounting misses (a sandbox's processes are
    reaped inside its own PID namespace). Other load on the machine counts too: read it on a quiet one."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
