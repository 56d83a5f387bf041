"""Reading a command's output file into memory without ever holding more than a cap of it."""

from __future__ import annotations

import os
from pathlib import Path

# Enough for any observation a model can use; a larger output keeps its head and tail.
DEFAULT_READ_CAP = 1 << 20


def elision_marker(elided: int, unit: str, path: str | os.PathLike[str] | None) -> str:
    """The line put where the middle of an over-long output was cut out."""
    where = f"; full output in {path}" if path else ""
    return f"\n[... {elided:,} {unit} elided{where} ...]\n"


def read_capped(path: Path, cap: int = DEFAULT_READ_CAP) -> tuple[str, int]:
    """The file's text (UTF-8, undecodable bytes replaced) and its size in bytes.

    A file larger than `cap` bytes gives its first and last `cap // 2` bytes around an elision marker
    naming the file, so memory stays bounded whatever the command printed.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - the with-block below closes it
    except FileNotFoundError:  # the command never ran far enough to open it
        return "", 0
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= cap:
            return fh.read(size).decode("utf-8", errors="replace"), size
        half = cap // 2
        head = fh.read(half)
        fh.seek(size - half)
        tail = fh.read(half)
    elided = size - len(head) - len(tail)
    text = (
        head.decode("utf-8", errors="replace")
        + elision_marker(elided, "bytes", path)
        + tail.decode("utf-8", errors="replace")
    )
    return text, size
