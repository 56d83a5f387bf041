"""trajectory.jsonl: one JSON object per line, appended and flushed as each event happens.

Events: `start` (settings, prompts), `step` (completion, calls, observations, timings, tokens, and the
patch as it stands after the step), `end` (the result). A killed process loses at most the step in flight;
`recovered_result` turns what a killed run's trajectory holds into its result.

The directory holding a trajectory is marked as a devloop run directory (RUN_MARKER, holding the writing
process as its owner): a workspace never copies a marked directory in from the user's repository, and
`devloop recover` tells a killed run from one that is still going.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

RUN_MARKER = ".devloop-run"
EVENT_TYPES = ("start", "step", "end")


def _default(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        # One level only: the encoder comes back here for a dataclass inside, so the JSON is asdict's
        # without asdict's deep copy of every list and dict (a step's observations) on every step.
        return {f.name: getattr(o, f.name) for f in fields(o)}
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def mark_run_dir(directory: Path) -> None:
    """Mark `directory` as a devloop run directory owned by this process (best effort; rewritten by each
    run that writes there, so the owner is the latest writer)."""
    from devloop.runtime.stale import owner_record

    with contextlib.suppress(OSError):
        tmp = directory / f"{RUN_MARKER}.{os.getpid()}"
        tmp.write_text(f"devloop run directory; owner: {owner_record()}\n", encoding="utf-8")
        os.replace(tmp, directory / RUN_MARKER)


def is_run_dir(directory: Path) -> bool:
    """Whether `directory` holds devloop's marker as a regular file (a link is not followed)."""
    import stat

    try:
        return stat.S_ISREG(os.lstat(directory / RUN_MARKER).st_mode)
    except OSError:
        return False


def owner_alive(directory: Path) -> int | None:
    """The pid of the process that wrote the run in `directory` if it may still be running, else None."""
    from devloop.runtime.stale import is_dead, owner_record

    try:
        text = (directory / RUN_MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    theirs = text.rpartition("owner: ")[2].split()
    ours = owner_record().split()
    if len(theirs) != 4 or not theirs[0].isdigit() or not theirs[1].lstrip("-").isdigit():
        return None
    if theirs[2:] != ours[2:]:  # another boot (dead), or another PID namespace (cannot be judged here)
        return None
    pid, started = int(theirs[0]), int(theirs[1])
    return None if started < 0 or is_dead(pid, started) else pid


class Trajectory:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        mark_run_dir(path.parent)
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
    """The events of a trajectory file; a torn last line (killed mid-write) is skipped.

    Raises ValueError naming the file and line for anything that is not a devloop trajectory (not UTF-8,
    not JSON objects, no event type), including a file whose only line is not JSON."""
    seen = 0
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError as e:
                    if seen and f.read(1) == "":  # only the last line may be torn
                        return
                    raise ValueError(_not_ours(path, lineno, f"not JSON: {e.msg}")) from None
                if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
                    raise ValueError(_not_ours(path, lineno, "not a start, step or end event"))
                seen += 1
                yield event
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a devloop trajectory (not UTF-8 text)") from None


def _not_ours(path: Path, lineno: int, why: str) -> str:
    return f"{path}:{lineno}: not a devloop trajectory ({why})"


def recovered_result(events: list[dict[str, Any]], output: Path) -> dict[str, Any]:
    """result.json's fields for a run that ended without writing it, from its trajectory's events.

    With an `end` event (killed while writing result.json) that event's result is the run's. Otherwise
    exit_status is "interrupted", `recovered` is true, and steps, tokens and duration are those of the last
    step written; the step in flight when the process died is lost."""
    ends = [e for e in events if e.get("type") == "end" and isinstance(e.get("result"), dict)]
    if ends:
        return {**ends[-1]["result"], "recovered": True}
    start = next((e for e in events if e.get("type") == "start"), {})
    steps = [e for e in events if e.get("type") == "step"]
    last = steps[-1] if steps else {}
    usage = last.get("total_usage") if isinstance(last.get("total_usage"), dict) else {}
    stamps = [e["ts"] for e in events if isinstance(e.get("ts"), int | float)]
    settings = start.get("settings") if isinstance(start.get("settings"), dict) else {}
    n = last.get("step", 0) if isinstance(last.get("step"), int) else 0
    return {
        "exit_status": "interrupted",
        "reason": f"the devloop process ended without a result after step {n} (killed?); recovered "
        "from the trajectory, the step in flight is lost",
        "steps": n,
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "duration_s": round(max(stamps) - min(stamps), 3) if stamps else 0.0,
        "patch_path": str(output / "patch.diff"),
        "trajectory_path": str(output / "trajectory.jsonl"),
        "model": str(start.get("model") or settings.get("model") or ""),
        "tool_format": str(settings.get("tool_format") or ""),
        "workspace": None,
        "sandbox": str(start.get("sandbox") or "none"),
        "recovered": True,
    }


def last_patch(events: list[dict[str, Any]]) -> str:
    """The patch as it stood after the last step written ("" before any step)."""
    for event in reversed(events):
        if event.get("type") == "step" and isinstance(event.get("patch"), str):
            return event["patch"]
    return ""
