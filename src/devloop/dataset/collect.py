"""Reading eval run directories, `devloop run` directories and chat sessions as data: one record per
attempt (or chat turn), with its trajectory, grade, task facts and review decision.

A run directory holds what a model wrote, so it is read as hostile input: every path is opened one
component at a time from an fd of the run's root with O_NOFOLLOW (a symlink anywhere is never followed,
the entry is skipped), and only regular files under a size cap are read (an lstat, then an open by
name, would leave a window in which an entry could be swapped for a link)."""

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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _step(event: dict[str, Any]) -> dict[str, Any]:
    """A step event with every field the builder reads of the type it expects: a trajectory is written
    next to what the model wrote, so a field of another type is dropped, not trusted to be iterable."""
    step = dict(event)
    step["calls"] = _dicts(step.get("calls"))
    step["observations"] = _dicts(step.get("observations"))
    for obs in step["observations"]:
        if not isinstance(obs.get("meta"), dict):
            obs.pop("meta", None)
    completion = step.get("completion") if isinstance(step.get("completion"), dict) else {}
    step["completion"] = {
        "content": completion["content"] if isinstance(completion.get("content"), str) else "",
        "tool_calls": _dicts(completion.get("tool_calls")),
    }
    feedback = step.get("feedback")
    step["feedback"] = [f for f in feedback if isinstance(f, str)] if isinstance(feedback, list) else []
    error = step.get("format_error")
    step["format_error"] = error if isinstance(error, str) and error else None
    if not isinstance(step.get("patch"), str):
        step.pop("patch", None)
    return step


def _start(event: dict[str, Any]) -> dict[str, Any]:
    start = dict(event)
    for key in ("system", "task", "repo"):
        if not isinstance(start.get(key), str):
            start.pop(key, None)
    settings = start.get("settings") if isinstance(start.get("settings"), dict) else {}
    start["settings"] = (
        settings if isinstance(settings.get("tool_format"), str) else {**settings, "tool_format": "native"}
    )
    return start


def _events(text: str | None) -> list[dict[str, Any]]:
    """The trajectory's events, steps and the start event checked field by field (see _step)."""
    out = []
    for line in (text or "").splitlines():
        event = _json(line)
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        out.append(_step(event) if kind == "step" else _start(event) if kind == "start" else event)
    return out


def _tasks(root: int) -> dict[str, dict[str, Any]]:
    """The run's task records (tasks.jsonl), by instance id."""
    found = {}
    for line in (read_file(root, "tasks.jsonl") or "").splitlines():
        rec = _json(line)
        if isinstance(rec, dict) and isinstance(rec.get("instance_id"), str):
            found[rec["instance_id"]] = rec
    return found


def _reviews(root: int) -> dict[tuple[str, int], dict[str, Any]]:
    """The latest review decision per (instance, attempt) in the run's reviews.jsonl (devloop review's
    file: one JSON decision a line, later lines winning); a line that is not a decision is skipped."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for line in (read_file(root, "reviews.jsonl") or "").splitlines():
        rec = _json(line)
        if not isinstance(rec, dict) or rec.get("action") not in ("accept", "reject", "correct"):
            continue
        try:
            found[(str(rec["instance_id"]), int(rec["attempt"]))] = rec
        except (KeyError, TypeError, ValueError):
            continue
    return found


# Verdict categories that grade the model's answer; the others (env_error, timeout, agent_error, error)
# say the run or the grader failed, so the attempt is neither desirable nor undesirable.
GRADES = ("resolved", "unresolved", "empty_patch", "patch_apply_failed")


def sources(path: Path) -> list[dict[str, Any]]:
    """The attempts of an eval run directory, the turns of a chat session (a directory holding
    session.json) or of every session in a chat store (a directory holding sessions/), or the one
    attempt of a `devloop run` directory (trajectory.jsonl)."""
    found = kind(path)
    if found == "run":
        return attempts(path)
    if found == "session":
        return chat_turns(path)
    if found == "single":
        return single_run(path)
    if found != "store":
        return []
    root = os.open(path, _DIR)
    try:
        sessions = _open_dir(root, "sessions")
        if sessions is None:
            return []
        names = _entries(sessions)
        os.close(sessions)
    finally:
        os.close(root)
    return [t for name in names for t in chat_turns(path / "sessions" / name)]


def _is_dir(parent: int, name: str) -> bool:
    fd = _open_dir(parent, name)
    if fd is None:
        return False
    os.close(fd)
    return True


def _is_file(parent: int, name: str) -> bool:
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode)


def kind(path: Path) -> str | None:
    """ "run" (an eval run), "session", "store" or "single" (a `devloop run` directory) for a directory
    `sources` reads; None for anything else."""
    try:
        root = os.open(path, _DIR)
    except OSError:
        return None
    try:
        if _is_dir(root, "instances"):
            return "run"
        if _is_file(root, "session.json"):
            return "session"
        if _is_dir(root, "sessions"):
            return "store"
        return "single" if _is_file(root, "trajectory.jsonl") else None
    finally:
        os.close(root)


def _record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "run": "", "instance_id": "", "index": 0, "graded": False, "category": "", "resolved": False,
        "finished": False, "exit_status": "", "steps": 0, "patch": "", "problem": "", "repo": "",
        "gold_patch": "", "tests": [], "failing_tests": [], "patch_applied": False, "result": {},
        "review": None, "task_meta": {}, "events": [],
    }  # fmt: skip
    base.update(fields)
    return base


def _run_files(fd: int) -> tuple[list[dict[str, Any]], dict[str, Any], str, list[str]]:
    """The trajectory events, result.json, patch.diff of one agent run's directory (fd), and the tests
    its feedback loop ran last (events.jsonl's last `test_run`: the tests that decided `test_status`)."""
    events = _events(read_file(fd, "trajectory.jsonl"))
    result = _json(read_file(fd, "result.json"))
    tests: list[str] = []
    for line in (read_file(fd, "events.jsonl") or "").splitlines():
        event = _json(line)
        if isinstance(event, dict) and event.get("kind") == "test_run":
            tests = sorted({t for t in _list(event.get("tests")) if isinstance(t, str)})
    return events, result if isinstance(result, dict) else {}, read_file(fd, "patch.diff") or "", tests


def _steps(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e.get("type") == "step")


def single_run(path: Path) -> list[dict[str, Any]]:
    """The one attempt of a `devloop run` directory, ungraded like a chat turn: its task is the start
    event's, its repository the name of the one the run worked on, its instance the directory's name."""
    try:
        root = os.open(path, _DIR)
    except OSError:
        return []
    try:
        events, result, patch, tests = _run_files(root)
    finally:
        os.close(root)
    start = next((e for e in events if e.get("type") == "start"), {})
    exit_status = str(result.get("exit_status") or "")
    repo = Path(str(start.get("repo") or path.name)).name
    return [
        _record(
            run=path.name, instance_id=f"run-{path.name}", exit_status=exit_status,
            finished=exit_status == "finished", steps=_steps(events), patch=patch,
            problem=str(start.get("task") or ""), repo=f"run:{repo}", result=result, events=events,
            tests=tests,
        )
    ]  # fmt: skip


def chat_turns(path: Path) -> list[dict[str, Any]]:
    """One record per turn of a chat session (session.json plus turn-N/ run directories): ungraded, so
    no stage that asks for a resolved patch keeps one, but every other rule applies. Each turn is a task
    of its own (instance `chat-SESSION-N`), so per_instance never picks one turn of a session."""
    try:
        root = os.open(path, _DIR)
    except OSError:
        return []
    found = []
    try:
        session = _json(read_file(root, "session.json"))
        if not isinstance(session, dict) or not isinstance(session.get("turns"), list):
            return []
        sid = str(session.get("id") or path.name)
        for turn in session["turns"]:
            if not isinstance(turn, dict) or not isinstance(turn.get("turn"), int):
                continue
            n = turn["turn"]
            fd = _open_dir(root, f"turn-{n}")  # by its number: the recorded run_dir path is not followed
            if fd is None:
                continue
            try:
                events, result, patch, tests = _run_files(fd)
            finally:
                os.close(fd)
            found.append(
                _record(
                    run=path.name, instance_id=f"chat-{sid}-{n}", index=n, exit_status=str(turn.get("exit_status") or ""),
                    finished=turn.get("exit_status") == "finished", steps=_steps(events), patch=patch,
                    problem=str(turn.get("prompt") or ""), repo=f"chat:{Path(str(session.get('repo') or sid)).name}",
                    result=result, events=events, tests=tests,
                )
            )  # fmt: skip
    finally:
        os.close(root)
    return found


def attempts(run: Path) -> list[dict[str, Any]]:
    """One record per graded attempt of an eval run: instance, index, grade, patch, the task's problem
    statement, repository and gold patch (from tasks.jsonl), the tests that decide it, result.json's
    fields, the attempt's latest review decision, and the trajectory events."""
    try:
        root = os.open(run, _DIR)
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    try:
        tasks = _tasks(root)
        reviews = _reviews(root)
        inst_root = _open_dir(root, "instances")
        if inst_root is None:
            return found
        try:
            for inst in _entries(inst_root):
                found.extend(_instance(inst_root, inst, tasks, reviews, run.name))
        finally:
            os.close(inst_root)
    finally:
        os.close(root)
    return found


def _instance(
    inst_root: int,
    name: str,
    tasks: dict[str, dict[str, Any]],
    reviews: dict[tuple[str, int], dict[str, Any]],
    run: str,
) -> list[dict[str, Any]]:
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
            result: Any = None
            try:
                unit = _json(read_file(att, "unit.json"))
                if not isinstance(unit, dict):
                    continue  # not graded yet, or not a record
                agent = _open_dir(att, "agent")
                events = [] if agent is None else _events(read_file(agent, "trajectory.jsonl"))
                if agent is not None:
                    result = _json(read_file(agent, "result.json"))
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
            task = tasks.get(iid, {})
            status = verdict.get("tests_status") if isinstance(verdict.get("tests_status"), dict) else {}
            tests, failing = [], []
            for group in ("FAIL_TO_PASS", "PASS_TO_PASS"):
                g = status.get(group) if isinstance(status.get(group), dict) else {}
                for key in ("success", "failure"):
                    names = [t for t in _list(g.get(key)) if isinstance(t, str)]
                    tests += names
                    failing += names if key == "failure" else []
            category = str(verdict.get("category") or "")
            patch = str(unit.get("patch") or "")
            review = reviews.get((iid, index))
            if review is not None and review.get("model_patch_sha256") not in (None, _sha256(patch)):
                review = None  # decided on another patch (the attempt was redone): stale
            found.append(
                _record(
                    run=run, instance_id=iid, index=index, graded=category in GRADES, category=category,
                    resolved=category == "resolved", finished=unit.get("exit_status") == "finished",
                    exit_status=str(unit.get("exit_status") or ""), steps=steps, patch=patch,
                    problem=str(task.get("problem_statement") or ""), repo=str(task.get("repo") or ""),
                    gold_patch=str(task.get("patch") or ""), tests=sorted(set(tests)),
                    failing_tests=sorted(set(failing)),
                    patch_applied=bool(verdict.get("patch_applied_with")) or category in ("resolved", "unresolved"),
                    result=result if isinstance(result, dict) else {}, review=review, events=events,
                    task_meta={k: task[k] for k in ("issue_numbers", "issue_url", "issue_number") if k in task},
                )
            )  # fmt: skip
    finally:
        os.close(att_root)
    return found


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()
