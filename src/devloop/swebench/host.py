"""Host facts the official containers fix, checked against this machine.

The official images generate a locale the tests' LANG/LC_ALL name, limit the container's CPUs, and run
some repositories' tests as a non-root user. devloop reproduces what it can:
- a locale the host lacks is compiled with `localedef` into the task's venv at install time, inside the
  sandbox (the only place both the install and the tests can see), and the test command finds it through
  LOCPATH; the system's locale archive is never touched;
- tests run as a non-root user whenever the bwrap sandbox grades (as root it starts them as an
  unprivileged user);
- the CPU count cannot be faked: fewer CPUs than the container's limit is named.
What does not hold here is named, per task, for the verdict (`extra["host_not_reproduced"]`), rather
than grading in a quietly different machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

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


LOCALE_DIR = "$VIRTUAL_ENV/share/devloop-locales"
"""Where the install step compiles a locale the host lacks (the venv: written by the sandbox, seen by
the tests); the test command's LOCPATH."""
_I18N = Path("/usr/share/i18n")
_LOCALE = re.compile(r"^(?P<source>[a-z]{2,3}_[A-Z]{2})\.(?P<charmap>UTF-8)$")


def locale_sources(locale: str, i18n: Path = _I18N) -> tuple[str, str] | None:
    """(source, charmap) that `localedef` compiles `locale` ("en_US.UTF-8") from, when this host has
    localedef and both definitions; None otherwise."""
    found = _LOCALE.match(locale)
    if found is None or shutil.which("localedef") is None:
        return None
    source, charmap = found.group("source"), found.group("charmap")
    if not (i18n / "locales" / source).is_file():
        return None
    if not any((i18n / "charmaps" / f"{charmap}{ext}").is_file() for ext in ("", ".gz")):
        return None
    return source, charmap


def locale_step(locale: str, source: str, charmap: str) -> str:
    """The install step that compiles `locale` into LOCALE_DIR (`-c`: glibc's own en_US definition
    carries warnings that are not errors)."""
    target = f'"{LOCALE_DIR}/{locale}"'
    return (
        f'mkdir -p "{LOCALE_DIR}" && localedef -c -i {shlex.quote(source)} -f {shlex.quote(charmap)} {target}'
    )


def with_locpath(test_cmd: str) -> str:
    """The test command with LOCPATH naming LOCALE_DIR (an assignment before the command: the test
    files are appended after it)."""
    return f'LOCPATH="{LOCALE_DIR}" {test_cmd}'


def reproduce_locale(fields: dict[str, Any], host: HostFacts, locales: frozenset[str] | None = None) -> bool:
    """Make environment `fields` (install, test_cmd) compile and use the locale `host` names when this
    machine lacks it and can build it; whether they now reproduce it."""
    if not host.locale or locale_installed(host.locale, locales):
        return False
    sources = locale_sources(host.locale)
    if sources is None:
        return False
    step = locale_step(host.locale, *sources)
    lines = (fields.get("install") or "set -euxo pipefail").splitlines()
    fields["install"] = "\n".join([lines[0], step, *lines[1:]])
    fields["test_cmd"] = with_locpath(fields["test_cmd"])
    return True


def locale_installed(locale: str, locales: frozenset[str] | None = None) -> bool:
    """Whether the host has `locale` (e.g. "en_US.UTF-8") installed."""
    return _normal(locale) in (installed_locales() if locales is None else locales)


def host_cpus() -> int:
    """The CPUs this process may run on (what `os.cpu_count()`-style checks see, affinity included)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_summary() -> dict[str, Any]:
    """What this machine is, for a validation report: CPUs, user, installed locales, whether a missing
    locale can be compiled, whether bwrap grades here."""
    return {
        "cpus": host_cpus(),
        "euid": os.geteuid(),
        "locales": sorted(installed_locales()),
        "localedef_en_US_UTF-8": locale_sources("en_US.UTF-8") is not None,
        "bwrap_problem": _bwrap_problem(),
    }


def _bwrap_problem() -> str | None:
    from devloop.runtime.bwrap import probe_bwrap  # lazy: only a spec that asks for a non-root user

    return probe_bwrap()


def unreproduced(
    host: HostFacts,
    *,
    locales: frozenset[str] | None = None,
    cpus: int | None = None,
    euid: int | None = None,
    generated_locale: bool = False,
    bwrap_problem: str | None | bool = False,
) -> list[str]:
    """The facts of `host` this machine does not reproduce, one phrase each (empty when all hold).
    `generated_locale`: the task's install compiles the locale (see `locale_step`). `bwrap_problem`:
    why bwrap cannot grade here, None when it can (False: probe it)."""
    notes: list[str] = []
    if host.locale and not generated_locale and not locale_installed(host.locale, locales):
        notes.append(
            f"the {host.locale} locale (not installed here and localedef cannot build it; "
            "LANG/LC_ALL name it anyway)"
        )
    cpus = host_cpus() if cpus is None else cpus
    if host.cpus and cpus < host.cpus:
        notes.append(
            f"{host.cpus:g} CPUs (this host has {cpus}; a test that needs more, such as one run with "
            "-j2, may skip or fail)"
        )
    euid = os.geteuid() if euid is None else euid
    if host.non_root and euid == 0:
        # Under bwrap (what grading picks where it works) root's tests run as an unprivileged user; a
        # run forced to --sandbox none says so in every verdict (`extra.unconfined`).
        problem = _bwrap_problem() if bwrap_problem is False else bwrap_problem
        if problem is not None:
            notes.append(f"tests as a non-root user (devloop runs as root and bwrap cannot grade: {problem})")
    return notes
