"""Where a task's repository lives under a `--mirrors` directory, one answer for every command.

Two layouts are read: `DIR/<owner>__<name>` (or `.git`), a clone or bare repository per repository, and
`DIR/<owner>+<name>/repo` (or `DIR/<owner>+<name>` itself), as fetched mirrors are laid out.
"""

from __future__ import annotations

from pathlib import Path

from devloop.tasks.safety import component_problem


def mirror_candidates(mirrors: Path, repo: str) -> list[Path]:
    """The places `repo` (owner/name) may be under `mirrors`, in the order they are tried; none for a
    name that is not one directory name in either layout (`..`, a NUL), so no record reaches outside."""
    under, plus = repo.replace("/", "__"), repo.replace("/", "+")
    if component_problem(under) is not None or component_problem(plus) is not None:
        return []
    return [mirrors / under, mirrors / f"{under}.git", mirrors / plus / "repo", mirrors / plus]


def is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def mirror_git_dir(mirrors: Path, repo: str) -> Path | None:
    """The git directory of `repo` under `mirrors` (a clone's `.git` or a bare repository), if any."""
    for candidate in mirror_candidates(mirrors, repo):
        for git_dir in (candidate / ".git", candidate):
            if is_git_dir(git_dir):
                return git_dir
    return None
