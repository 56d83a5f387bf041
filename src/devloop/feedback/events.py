"""events.jsonl: one JSON object per line, flushed as each feedback event happens.

Every event has `ts` (unix seconds), `kind`, `step`, `retry` (rollbacks so far), `queue` (the queue running,
or null), `patch_sha` (first 12 hex digits of the SHA-1 of the workspace diff, or null), `test` (what ran:
a test id, a count of selected tests or "all"), `status`, `trace_bytes` (UTF-8 bytes of the failure traces
the event concerns) and `timings` (seconds), plus kind-specific fields. Kinds: test_run, test (one per test
that fails or changed status), checkpoint, rollback, rescue, queue_start, queue_end.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Listener = Callable[[dict[str, Any]], None]


def patch_sha(patch: str) -> str:
    """A short stable id of a diff, for correlating events with states of the workspace."""
    return hashlib.sha1(patch.encode("utf-8", errors="replace")).hexdigest()[:12]


class EventLog:
    """Appends events to `path` (None: keep them in memory only) and tells `listeners` (e.g. metrics)."""

    def __init__(self, path: Path | None, *, listeners: list[Listener] | None = None) -> None:
        self.path = path
        self.listeners: list[Listener] = list(listeners or [])
        self.context: dict[str, Any] = {"step": None, "retry": 0, "queue": None, "patch_sha": None}
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a", encoding="utf-8")

    def set_context(self, **fields: Any) -> None:
        """Fields every later event carries unless it names them itself (step, retry, queue, patch_sha)."""
        self.context.update(fields)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record one event; returns it as written."""
        event: dict[str, Any] = {
            "ts": round(time.time(), 6),
            "kind": kind,
            **self.context,
            "test": None,
            "status": None,
            "trace_bytes": 0,
            "timings": {},
        }
        event.update(fields)
        line = json.dumps(event, ensure_ascii=False, default=str)
        with self._lock:
            self.events.append(event)
            if self._fh is not None:
                self._fh.write(line + "\n")
                self._fh.flush()
        for listener in self.listeners:
            listener(event)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
