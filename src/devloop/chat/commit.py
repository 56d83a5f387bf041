"""`/commit [MESSAGE]`: the tree as it is now, committed on the user's current branch, only when asked.

The model has worked in this tree and could write its .git, so the repository's configuration is never
the one git acts on: the tree is staged through devloop's private git dir (its own config, a throwaway
index) with the objects written into the user's object store; the user's .git is only read for HEAD and
written by plumbing (update-ref, read-tree) under the isolated configuration, which turns hooks and
fsmonitor off. No filter, hook or signing program from the repository can run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from devloop.workspace import _GIT, WorkspaceError, isolated_git_env


def _identity() -> dict[str, str]:
    """The user's name and email from the environment or their own global git config (theirs, not the
    repository's), else devloop's."""
    found: dict[str, str] = {}
    for key in ("name", "email"):
        value = os.environ.get(f"GIT_AUTHOR_{key.upper()}")
        if not value:
            env = isolated_git_env(os.environ.get("HOME"))
            del env["GIT_CONFIG_GLOBAL"], env["XDG_CONFIG_HOME"]  # so that --global reads ~/.gitconfig
            proc = subprocess.run(["git", "config", "--global", "--get", f"user.{key}"], cwd="/", env=env,
                                  capture_output=True, text=True, check=False)  # fmt: skip
            value = proc.stdout.strip() or ("devloop" if key == "name" else "devloop@localhost")
        found[f"GIT_AUTHOR_{key.upper()}"] = found[f"GIT_COMMITTER_{key.upper()}"] = value
    return found


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([*_GIT, *args], cwd=cwd, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"/commit: git {args[0]} failed: {said[-1] if said else proc.returncode}")
    return proc.stdout.decode(errors="replace").strip()


def commit(repo: Path, private_gitdir: Path, message: str) -> str:
    """Commit everything in `repo` (tracked and untracked, .gitignore respected, `.devloop` left out)
    on its current branch; returns one line for the user. Raises WorkspaceError naming what is wrong."""
    repo = repo.resolve()
    dotgit = repo / ".git"
    if dotgit.is_symlink() or not dotgit.is_dir():
        raise WorkspaceError(f"/commit: {dotgit} is not a git directory (worktrees and submodules: no)")
    user = isolated_git_env() | {"GIT_DIR": str(dotgit)}
    head = subprocess.run([*_GIT, "symbolic-ref", "-q", "HEAD"], cwd=repo, env=user,
                          capture_output=True, text=True, check=False)  # fmt: skip
    branch = head.stdout.strip()
    if head.returncode != 0 or not branch.startswith("refs/heads/"):
        raise WorkspaceError("/commit: HEAD is not on a branch; check one out first")
    parent = subprocess.run([*_GIT, "rev-parse", "-q", "--verify", f"{branch}^{{commit}}"], cwd=repo,
                            env=user, capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="devloop-commit-") as tmp:
        index = Path(tmp) / "index"
        staging = isolated_git_env() | _identity()
        staging.update(GIT_DIR=str(private_gitdir), GIT_WORK_TREE=str(repo), GIT_INDEX_FILE=str(index),
                       GIT_OBJECT_DIRECTORY=str(dotgit / "objects"))  # fmt: skip
        if parent:  # tracked files stay tracked even if now ignored, as with `git add -A`
            _run(["read-tree", parent], staging, repo)
        _run(["add", "-A", "--ignore-errors", "--", ".", ":(exclude).devloop"], staging, repo)
        tree = _run(["write-tree"], staging, repo)
        if parent and tree == _run(["rev-parse", f"{parent}^{{tree}}"], staging, repo):
            return f"/commit: nothing to commit on {branch.removeprefix('refs/heads/')}"
        new = _run(["commit-tree", tree, *(["-p", parent] if parent else []), "-m", message], staging, repo)
    # old value given: the update fails rather than overwrite a branch moved meanwhile
    _run(["update-ref", "-m", "devloop chat: /commit", branch, new, parent], user, repo)
    _run(["read-tree", new], user, repo)  # the user's index matches the commit; the tree is not touched
    return f"committed {new[:12]} on {branch.removeprefix('refs/heads/')}: {message.splitlines()[0]}"
