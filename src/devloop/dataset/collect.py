"""Reading eval run directories as data: one record per graded attempt, with its trajectory.

A run directory holds what a model wrote, so it is read as hostile input: every path is opened one
component at a time from an fd of the run's root with O_NOFOLLOW (a symlink anywhere is never followed,
the entry is skipped), and only regular files under a size cap are read. Checking with lstat and then
opening by name would leave a window in which an entry could be swapped for a link.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a planted FIFO never blocks
# Larger than any real run's trajectory or record (and would exhaust memory): skipped.
MAX_FILE_BYTES = 256 * 1024 * 1024


def _open_dir(parent: int, name: str) -> int | None:
    try:
        return os.open(name, _DIR, dir_fd=parent)
    except OSError:
        return None  # absent, a symlink (ELOOP) or not a directory


def read_file(parent: int, name: str) -> str | None:
    """The text of the regular file `name` in the directory fd `parent`, never through a link, or None."""
    try:
        fd = os.open(name, _FILE, dir_fd=parent)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            return None
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > MAX_FILE_BYTES:  # grew after the fstat
                return None
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _entries(fd: int) -> list[str]:
    return sorted(n for n in os.listdir(fd) if not n.startswith("."))


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _events(text: str | None) -> list[dict[str, Any]]:
    out = []
    for line in (text or "").splitlines():
        event = _json(line)
        if isinstance(event, dict):
            out.append(event)
    return out


def _problems(root: int) -> dict[str, str]:
    """Problem statements of the run's task records (tasks.jsonl), by instance id."""
    found = {}
    for line in (read_file(root, "tasks.jsonl") or "").splitlines():
        rec = _json(line)
        if isinstance(rec, dict) and isinstance(rec.get("instance_id"), str):
            found[rec["instance_id"]] = str(rec.get("problem_statement") or "")
    return found


def attempts(run: Path) -> list[dict[str, Any]]:
    """One record per graded attempt: instance, index, resolved, finished, steps, patch, problem (the
    task's problem statement, "" when the run has no tasks.jsonl) and trajectory events."""
    try:
        root = os.open(run, _DIR)
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    try:
        problems = _problems(root)
        inst_root = _open_dir(root, "instances")
        if inst_root is None:
            return found
        try:
            for inst in _entries(inst_root):
                found.extend(_instance(inst_root, inst, problems))
        finally:
            os.close(inst_root)
    finally:
        os.close(root)
    return found


def _instance(inst_root: int, name: str, problems: dict[str, str]) -> list[dict[str, Any]]:
    inst = _open_dir(inst_root, name)
    if inst is None:
        return []
    att_root = _open_dir(inst, "attempts")
    os.close(inst)
    if att_root is None:
        return []
    found = []
    try:
        for att_name in _entries(att_root):
            att = _open_dir(att_root, att_name)
            if att is None:
                continue
            try:
                unit = _json(read_file(att, "unit.json"))
                if not isinstance(unit, dict):
                    continue  # not graded yet, or not a record
                agent = _open_dir(att, "agent")
                events = [] if agent is None else _events(read_file(agent, "trajectory.jsonl"))
                if agent is not None:
                    os.close(agent)
            finally:
                os.close(att)
            raw = unit.get("verdict")
            verdict: dict[str, Any] = raw if isinstance(raw, dict) else {}
            iid = str(unit.get("instance_id", name))
            try:
                index = int(unit.get("index", 0))
                steps = int(unit.get("steps") or 0)
            except (TypeError, ValueError):
                continue
            found.append(
                {
                    "instance_id": iid,
                    "index": index,
                    "resolved": verdict.get("category") == "resolved",
                    "finished": unit.get("exit_status") == "finished",
                    "steps": steps,
                    "patch": str(unit.get("patch") or ""),
                    "problem": problems.get(iid, ""),
                    "events": events,
                }
            )
    finally:
        os.close(att_root)
    return found
