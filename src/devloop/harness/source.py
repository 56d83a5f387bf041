"""Getting a task's tree at base_commit out of a local mirror, and applying patches to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devloop.harness.diffs import parse_diff
from devloop.tasks.model import Task

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


class SourceError(Exception):
    """The task's repository or commit could not be found or read; one line naming both."""


def find_repository(task: Task, mirrors: Path | None) -> Path:
    """The git repository holding the task's sources: `repo_path`, else `<mirrors>/<owner>__<name>`."""
    candidates: list[Path] = []
    if task.repo_path is not None:
        candidates.append(Path(task.repo_path))
    if mirrors is not None:
        candidates += [Path(mirrors) / task.mirror_name, Path(mirrors) / f"{task.mirror_name}.git"]
    for path in candidates:
        if path.is_dir():
            return path
    if not candidates:
        raise SourceError(
            f"{task.instance_id}: no repository: the record has no repo_path and no --mirrors given"
        )
    raise SourceError(
        f"{task.instance_id}: no repository for {task.repo}: looked in {', '.join(map(str, candidates))}"
    )


def _git(repo: Path, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **_GIT_ENV},
        check=False,
    )


def _archive(repo: Path, commit: str, dest: Path, paths: list[str] | None = None) -> None:
    """`git archive commit [paths] | tar -x -C dest`, streamed; nothing is written into the repository."""
    with tempfile.TemporaryFile() as tar:
        proc = _git(
            repo, "archive", "--format=tar", commit, *(["--", *paths] if paths else []), stdout=tar.fileno()
        )
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise SourceError(
                f"git archive {commit[:12]} in {repo} failed: {err[-1] if err else proc.returncode}"
            )
        tar.seek(0)
        with tarfile.open(fileobj=tar, mode="r:") as archive:
            archive.extractall(dest, filter="tar")


def extract(task: Task, mirrors: Path | None, dest: Path) -> Path:
    """Write the tree of `task.base_commit` into `dest` (created; must be empty) and return it."""
    repo = find_repository(task, mirrors)
    if _git(repo, "cat-file", "-e", f"{task.base_commit}^{{commit}}").returncode != 0:
        raise SourceError(f"{task.instance_id}: commit {task.base_commit} is not in {repo}")
    dest.mkdir(parents=True, exist_ok=True)
    _archive(repo, task.base_commit, dest)
    return dest


def reset_to_base(task: Task, mirrors: Path | None, tree: Path, paths: list[str]) -> None:
    """Put `paths` back as they are at base_commit: restored if they exist there, else deleted."""
    repo = find_repository(task, mirrors)
    listed = _git(repo, "ls-tree", "-r", "--name-only", task.base_commit, "--", *paths) if paths else None
    existing = set(listed.stdout.decode().splitlines()) if listed else set()
    for rel in paths:
        target = tree / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    if existing:
        _archive(repo, task.base_commit, tree, sorted(existing))


@dataclass
class ApplyResult:
    """Whether a patch applied, with which command, and the output of every attempt."""

    applied: bool
    method: str | None
    log: str


def _run(cmd: list[str], cwd: Path, patch_file: Path) -> tuple[int, str]:
    env = {**os.environ, **_GIT_ENV, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    with patch_file.open("rb") as stdin:
        proc = subprocess.run(cmd, cwd=cwd, stdin=stdin, capture_output=True, env=env, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


def _clean_rejects(tree: Path, patch: str) -> None:
    for f in parse_diff(patch):
        for rel in (f.new_path, f.old_path):
            for leftover in (f"{rel}.rej", f"{rel}.orig"):
                p = tree / leftover if rel else None
                if p is not None and p.is_file():
                    p.unlink()


def apply_patch(tree: Path, patch: str, *, fallbacks: bool = True) -> ApplyResult:
    """Apply `patch` to `tree` as the official harness does: `git apply`, then `git apply --reject`,
    then `patch --batch --fuzz=5 -p1`. `fallbacks=False` tries only `git apply` (used for test patches).
    Like the official harness, hunks that `git apply --reject` did apply stay in place for `patch`.

    The tree need not be a git repository; GIT_CEILING_DIRECTORIES keeps git from finding an enclosing one
    (inside another repository, `git apply` would silently skip paths outside the current directory).
    """
    text = patch if patch.endswith("\n") else patch + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False, encoding="utf-8") as fh:
        fh.write(text)
        patch_file = Path(fh.name)
    attempts = [("git apply", ["git", "apply", "--verbose", "-"])]
    if fallbacks:
        attempts += [
            ("git apply --reject", ["git", "apply", "--verbose", "--reject", "-"]),
            ("patch --fuzz=5", ["patch", "--batch", "--fuzz=5", "-p1", "--no-backup-if-mismatch"]),
        ]
    log: list[str] = []
    try:
        for name, cmd in attempts:
            code, out = _run(cmd, tree, patch_file)
            log.append(f"$ {name}\n{out.rstrip()}\n(exit {code})\n")
            if code == 0:
                _clean_rejects(tree, patch)
                return ApplyResult(True, name, "\n".join(log))
        return ApplyResult(False, None, "\n".join(log))
    finally:
        patch_file.unlink(missing_ok=True)
