"""Reading a command's output file into memory without ever holding more than a cap of it."""

from __future__ import annotations

import os
import stat
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

    The file lives where a sandboxed command can write, so it is opened without following a link and
    without blocking, and only a regular file with one link is read: a command that swaps its output
    file for a link to a host file, a FIFO or a hard link gets a note, never the host file's contents.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:  # the command never ran far enough to open it
        return "", 0
    except OSError as exc:  # ELOOP: the name is a symbolic link now
        return f"[the output file {path} was replaced ({exc.strerror}); its contents are not shown]\n", 0
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        what = "a hard link" if stat.S_ISREG(st.st_mode) else "not a regular file"
        return f"[the output file {path} was replaced by {what}; its contents are not shown]\n", 0
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as fh:
        size = st.st_size
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
