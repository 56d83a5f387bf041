"""trajectory.jsonl: one JSON object per line, appended and flushed as each event happens.

Events: `start` (settings, prompts), `step` (completion, calls, observations, timings, tokens, and the
patch as it stands after the step), `end` (the result). A killed process loses at most the step in flight.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


def _default(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


class Trajectory:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # A reply may hold lone surrogates ("\ud800" from the server's JSON): written as that escape,
        # which JSON reads back as the same string, instead of failing the write.
        self._f = path.open("a", encoding="utf-8", errors="backslashreplace")

    def write(self, type_: str, **fields: Any) -> None:
        event = {"type": type_, "ts": round(time.time(), 3), **fields}
        self._f.write(json.dumps(event, ensure_ascii=False, default=_default) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_trajectory(path: Path) -> Iterator[dict[str, Any]]:
    """The events of a trajectory file; a torn last line (killed mid-write) is skipped."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                if f.read(1) == "":  # only the last line may be torn
                    return
                raise ValueError(f"{path}:{lineno}: not a JSON object ({e.msg})") from None
