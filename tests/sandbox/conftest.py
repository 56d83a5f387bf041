"""Fixtures for the sandbox tests, and the escape table printed at the end of the pytest run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devloop.runtime.bwrap import PRIVATE_DIRS, BwrapRuntime, probe_bwrap
from devloop.runtime.limits import MIB, Limits
from devloop.runtime.sandbox_env import is_under, real_homes

ESCAPE_ROWS_ENV = "DEVLOOP_TEST_ESCAPE_ROWS"

BWRAP_PROBLEM = probe_bwrap()
needs_bwrap = pytest.mark.skipif(
    BWRAP_PROBLEM is not None, reason=f"bubblewrap is not usable here: {BWRAP_PROBLEM}"
)

# Small enough that runaway output, huge files and fork bombs are stopped in well under a second.
TEST_LIMITS = Limits(max_processes=256, max_output_bytes=8 * MIB, max_file_bytes=64 * MIB)


@dataclass
class EscapeRow:
    attempt: str
    contained: bool
    by: str


class Escape:
    """Records one escape attempt: contained when the with-block's checks pass, not contained otherwise.

    Rows go to the file tests/conftest.py names (one JSON line each), so the table covers every
    pytest-xdist worker; it is printed at the end of the run."""

    def __init__(self, attempt: str, by: str) -> None:
        self.attempt = attempt
        self.by = by

    def __enter__(self) -> Escape:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, pytest.skip.Exception):
            return
        by = (
            self.by
            if exc is None
            else f"FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        )
        record_escape(EscapeRow(self.attempt, exc is None, by[:90]))


def record_escape(row: EscapeRow) -> None:
    line = json.dumps(row.__dict__) + "\n"
    with open(os.environ[ESCAPE_ROWS_ENV], "a", encoding="utf-8") as fh:
        fh.write(line)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def sandbox(workspace: Path) -> Iterator[BwrapRuntime]:
    if BWRAP_PROBLEM is not None:
        pytest.skip(f"bubblewrap is not usable here: {BWRAP_PROBLEM}")
    rt = BwrapRuntime(workspace, limits=TEST_LIMITS)
    try:
        yield rt
    finally:
        rt.close()


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found = []
    needle = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
            if needle in raw and state not in (b"Z", b"X"):
                found.append(int(name))
    return found


def wait_until(predicate: object, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(predicate())  # type: ignore[operator]


@pytest.fixture
def escape() -> type[Escape]:
    """`with escape(attempt, by=...):` records the attempt in the table printed at the end."""
    return Escape


@pytest.fixture
def host_processes_with() -> object:
    return processes_with


@pytest.fixture
def waiter() -> object:
    return wait_until


# Where a directory the sandbox can see (read-only, at the same path) may be made: inside the system paths it
# shows, not under the private /tmp, /var/tmp and /run, nor HOME.
_VISIBLE_PARENTS = (Path("/usr/local/share"), Path("/usr/local"), Path("/etc"))
# Where services keep their state (sockets among it), which the sandbox does not show at all.
_STATE_PARENTS = (Path("/var/lib"), Path("/srv"), Path("/opt"), Path("/var/cache"))


def _host_dir(parents: tuple[Path, ...], why: str) -> Iterator[Path]:
    hidden = [*PRIVATE_DIRS, *real_homes()]
    for parent in parents:
        if parent.is_dir() and os.access(parent, os.W_OK) and not any(is_under(parent, h) for h in hidden):
            path = Path(tempfile.mkdtemp(prefix="devloop-escape-", dir=parent))
            path.chmod(0o755)
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip(f"no directory {why} is writable here")


@pytest.fixture
def visible_dir() -> Iterator[Path]:
    """A fresh host directory (mode 0755) that the sandbox shows read-only (under /usr/local or /etc), so
    an attack can name host files that are really there inside; removed afterwards. Skipped where none
    can be made."""
    yield from _host_dir(_VISIBLE_PARENTS, "under /usr/local or /etc")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A fresh host directory (mode 0755) where services keep state (/var/lib, /srv, /opt...), outside
    every path the sandbox shows; removed afterwards. Skipped where none can be made."""
    yield from _host_dir(_STATE_PARENTS, "under /var/lib, /srv, /opt or /var/cache")
