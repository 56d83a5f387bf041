"""The built-in evaluation suite: small real projects with an issue, a gold patch and tests that pin it.

Each task lives in `builtin/<slug>/` as `task.json`, `repo/` (the project at its base commit),
`gold.patch` and `test.patch`. `materialize_builtin` turns every `repo/` into a one-commit git
repository whose commit id is the same on every machine, and returns SWE-bench-format records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from devloop.suite._gitobj import commit_id, read_tree_files, tree_id

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

# Fixed identity and date: the base commit id depends only on the files.
COMMIT_NAME = "devloop"
COMMIT_EMAIL = "suite@devloop.invalid"
COMMIT_TIMESTAMP = 1704067200  # 2024-01-01T00:00:00Z
COMMIT_MESSAGE = "base\n"

# Never part of a task's tree, even if someone ran the project's tests inside the package.
_SKIP = frozenset({"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".ruff_cache"})

REQUIRED_FIELDS = ("instance_id", "repo", "problem_statement", "FAIL_TO_PASS", "PASS_TO_PASS", "category")


class SuiteError(Exception):
    """A built-in task is missing, malformed, or could not be materialised."""


def list_builtin() -> list[str]:
    """The slugs of every built-in task, sorted."""
    if not BUILTIN_DIR.is_dir():
        return []
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "task.json").is_file())


def task_dir(slug: str) -> Path:
    """The package directory of one task; SuiteError if there is no such task."""
    path = BUILTIN_DIR / slug
    if not (path / "task.json").is_file():
        known = ", ".join(list_builtin()) or "none"
        raise SuiteError(f"unknown built-in task {slug!r} (known: {known})")
    return path


def load_task(slug: str) -> dict[str, Any]:
    """The task's record without the git fields: task.json plus `patch` and `test_patch` texts."""
    path = task_dir(slug)
    try:
        record = json.loads((path / "task.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path / 'task.json'}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise SuiteError(f"{path / 'task.json'}: missing field(s) {', '.join(missing)}")
    record["patch"] = (path / "gold.patch").read_text(encoding="utf-8")
    record["test_patch"] = (path / "test.patch").read_text(encoding="utf-8")
    return record


def expected_base_commit(slug: str) -> str:
    """The commit id `materialize_builtin` gives this task's base, computed without git."""
    files = read_tree_files(task_dir(slug) / "repo", _SKIP)
    return commit_id(
        tree_id(files),
        name=COMMIT_NAME,
        email=COMMIT_EMAIL,
        timestamp=COMMIT_TIMESTAMP,
        message=COMMIT_MESSAGE,
    )


def materialize_builtin(cache_dir: Path, slugs: list[str] | None = None) -> list[dict[str, Any]]:
    """Make (or reuse) a git repository per task under `cache_dir`; return SWE-bench-format records.

    Each record is task.json plus `patch`, `test_patch`, `base_commit`, `environment_setup_commit`
    (the same commit) and `repo_path`. A repository whose HEAD already is the expected commit is reused,
    so a warm call costs only hashing the package files. Safe against concurrent callers: each builds
    in a private directory and renames it into place.
    """
    cache_dir = Path(cache_dir).expanduser()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SuiteError(f"cannot create suite cache directory {cache_dir}: {exc.strerror}") from None
    records = []
    for slug in slugs if slugs is not None else list_builtin():
        record = load_task(slug)
        expected = expected_base_commit(slug)
        target = cache_dir / slug
        if _head(target) != expected:
            _build(slug, target, expected)
        record["base_commit"] = expected
        record["environment_setup_commit"] = expected
        record["repo_path"] = str(target)
        records.append(record)
    return records


def _head(repo: Path) -> str | None:
    """HEAD's commit id read straight from .git, or None when it is not a repository we made."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # The user's git config (signing, hooks, autocrlf, templates) must not change the commit.
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME=COMMIT_NAME,
        GIT_AUTHOR_EMAIL=COMMIT_EMAIL,
        GIT_AUTHOR_DATE=f"@{COMMIT_TIMESTAMP} +0000",
        GIT_COMMITTER_NAME=COMMIT_NAME,
        GIT_COMMITTER_EMAIL=COMMIT_EMAIL,
        GIT_COMMITTER_DATE=f"@{COMMIT_TIMESTAMP} +0000",
    )
    return env


def _git(args: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=_git_env(), capture_output=True, text=True)
    except FileNotFoundError:
        raise SuiteError(
            "git is not installed; the built-in suite needs it to make task repositories"
        ) from None
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SuiteError(f"git {args[0]} failed in {cwd}: {detail}")


def _build(slug: str, target: Path, expected: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.", dir=target.parent))
    try:
        files = read_tree_files(task_dir(slug) / "repo", _SKIP)
        for rel, data in files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        _git(["init", "-q"], tmp)
        _git(["add", "-A"], tmp)
        _git(["commit", "-q", "--no-verify", "-m", COMMIT_MESSAGE.rstrip("\n")], tmp)
        got = _head(tmp)
        if got != expected:
            raise SuiteError(f"task {slug}: git made base commit {got}, expected {expected}")
        _install(tmp, target, expected)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, target: Path, expected: str) -> None:
    """Move the fresh repository into place; a stale one is moved aside first, a racing good one wins."""
    for _ in range(3):
        try:
            os.rename(tmp, target)
            return
        except OSError:
            if _head(target) == expected:
                return  # another process finished first; ours is discarded by the caller
            stale = target.parent / f".stale-{target.name}-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(target, stale)
            except FileNotFoundError:
                continue
            shutil.rmtree(stale, ignore_errors=True)
    raise SuiteError(f"could not move the task repository into place at {target}")
