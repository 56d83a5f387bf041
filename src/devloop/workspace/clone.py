"""The starting state of a workspace: a shared clone of a git repository with the user's uncommitted
changes replayed on top, or a copy of a plain directory (what it leaves out)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devloop.workspace.gitcmd import _GIT, git, isolated_git_env


def _clone_with_changes(repo: Path, dest: Path) -> None:
    # HEAD's commit id, or nothing for a repository without commits (one git process for both answers).
    head = subprocess.run(
        [*_GIT, "rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=repo, capture_output=True,
        check=False, env=isolated_git_env(),
    )  # fmt: skip
    commit = head.stdout.decode(errors="replace").strip() if head.returncode == 0 else ""
    if commit:
        git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest))
        git(dest, "checkout", "-q", "--detach", commit)
        changes = git(repo, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv")
    else:  # a repository without commits: everything is uncommitted
        dest.mkdir(parents=True)
        git(dest, "init", "-q")
        changes = ""
    if changes.strip():
        git(dest, "apply", "--binary", "--whitespace=nowarn", "-", input=changes.encode())
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    run_dirs: dict[Path, bool] = {}
    for rel in filter(None, untracked):
        if _in_run_dir(repo, Path(rel), run_dirs):
            continue
        src, dst = repo / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore for a plain directory: its .git and devloop's own run directories."""
    from devloop.trajectory import is_run_dir

    return {n for n in names if n == ".git" or is_run_dir(Path(directory) / n)}


def _in_run_dir(repo: Path, rel: Path, seen: dict[Path, bool]) -> bool:
    """Whether the untracked file `rel` lies in one of devloop's run directories inside `repo` (marked
    with RUN_MARKER): earlier trajectories and patches are not the model's to read, and copying them would
    grow every later workspace. The marker is looked up with lstat, no link followed."""
    from devloop.trajectory import is_run_dir

    for parent in rel.parents:
        if parent == Path("."):
            return False
        if parent not in seen:
            seen[parent] = is_run_dir(repo / parent)
        if seen[parent]:
            return True
    return False
