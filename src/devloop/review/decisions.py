"""RUN_DIR/reviews.jsonl: one decision per line, appended under an exclusive fcntl lock.

Each decision is one write of one complete line while the lock is held, so two servers (two reviewers) on
one run never interleave or lose each other's lines. A corrupt line is reported and skipped, never fatal.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REVIEWS = "reviews.jsonl"
ACTIONS = ("accept", "reject", "correct")


def patch_sha256(patch: str) -> str:
    return hashlib.sha256(patch.encode("utf-8")).hexdigest()


@dataclass
class Reviews:
    """The decisions of one run, the latest per (instance, attempt) winning, and the lines that were bad."""

    latest: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ReviewsFileError(OSError):
    """RUN_DIR/reviews.jsonl cannot be used (a link, not a regular file, unreadable); says which and why."""


def _open_reviews(path: Path, flags: int) -> int:
    """An fd of the regular file `path`, never through a symbolic link and never blocking on a FIFO."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        raise
    except OSError as exc:
        why = "is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc)).lower()
        raise ReviewsFileError(
            exc.errno or 0, f"{path}: {why}; decisions are neither read nor written there"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ReviewsFileError(
            errno.EINVAL, f"{path}: not a regular file; decisions are neither read nor written there"
        )
    return fd


def append_decision(run_dir: Path, decision: dict[str, Any]) -> dict[str, Any]:
    """Append `decision` (with its time added) as one line of RUN_DIR/reviews.jsonl; return it.

    ReviewsFileError (nothing written) when reviews.jsonl is a link or not a regular file: a write never
    lands in another file through a link planted in the run directory."""
    if decision.get("action") not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {decision.get('action')!r}")
    record = {**decision, "time": time.time()}
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    # O_RDWR, not O_WRONLY: the last byte is read back (under the lock) to see whether a line was cut short.
    fd = _open_reviews(run_dir / REVIEWS, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A line cut short (a writer killed mid-write, a hand edit) must not swallow this one: start afresh.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return record


def read_reviews(run_dir: Path) -> Reviews:
    """Every decision of the run; a line that is not a decision is named in `problems` (file, line), and
    a reviews.jsonl that is a link or not a regular file is named there and not read."""
    out = Reviews()
    path = run_dir / REVIEWS
    try:
        fd = _open_reviews(path, os.O_RDONLY)
    except FileNotFoundError:
        return out
    except ReviewsFileError as exc:
        out.problems.append(exc.strerror or str(exc))
        return out
    with os.fdopen(fd, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
        data = fh.read()
    for lineno, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            key = (str(rec["instance_id"]), int(rec["attempt"]))
            if rec.get("action") not in ACTIONS:
                raise ValueError("unknown action")
        except (ValueError, KeyError, TypeError) as exc:
            out.problems.append(f"{path}:{lineno}: not a review decision ({type(exc).__name__}), skipped")
            continue
        out.latest[key] = rec
    return out
