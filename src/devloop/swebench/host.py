"""Host facts the official containers fix, checked against this machine.

The official images generate a locale the tests' LANG/LC_ALL name, limit the container's CPUs, and run
some repositories' tests as a non-root user. devloop sets the variables as the spec does but cannot
generate a system locale or fake the CPU count; what does not hold here is named, per task, for the
verdict (`extra["host_not_reproduced"]`), rather than grading in a quietly different machine.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache

from devloop.swebench.environments import HostFacts

NOTES_FIELD = "host_not_reproduced"
"""The task attribute (and verdict `extra` key) listing the host facts not reproduced here."""


def _normal(locale: str) -> str:
    return locale.lower().replace("utf-8", "utf8")


@cache
def installed_locales() -> frozenset[str]:
    """The locales this host has (`locale -a`), normalised ("en_us.utf8"); empty when it cannot tell."""
    try:
        proc = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(_normal(line.strip()) for line in proc.stdout.splitlines() if line.strip())


def host_cpus() -> int:
    """The CPUs this process may run on (what `os.cpu_count()`-style checks see, affinity included)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def unreproduced(
    host: HostFacts,
    *,
    locales: frozenset[str] | None = None,
    cpus: int | None = None,
    euid: int | None = None,
) -> list[str]:
    """The facts of `host` this machine does not reproduce, one phrase each (empty when all hold)."""
    notes: list[str] = []
    locales = installed_locales() if locales is None else locales
    if host.locale and _normal(host.locale) not in locales:
        notes.append(f"the {host.locale} locale (not installed here; LANG/LC_ALL name it anyway)")
    cpus = host_cpus() if cpus is None else cpus
    if host.cpus and cpus < host.cpus:
        notes.append(f"{host.cpus:g} CPUs (this host has {cpus})")
    euid = os.geteuid() if euid is None else euid
    if host.non_root and euid == 0:
        notes.append("tests as a non-root user (only when the grading sandbox demotes root: bwrap)")
    return notes
