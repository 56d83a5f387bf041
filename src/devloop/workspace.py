"""Isolation of the user's repository, and patch extraction.

A run never touches the user's working tree. For a git repository the workspace is a `git clone --shared`
of it (objects borrowed read-only through alternates, so it is as cheap as a worktree) checked out at HEAD,
with the user's uncommitted changes (staged, unstaged and untracked, minus ignored files) replayed on top.
A clone rather than `git worktree add`: the agent's own git commands (checkout -b, commit, stash, hooks)
then stay inside the workspace instead of writing branches and worktree state into the user's repository.
A directory that is not a git repository is copied. Either way the starting state is recorded as a git
tree (`base`), and the patch is the diff of the workspace against it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Fixed identity and no user config influence on what we parse (noprefix, color, pagers, hooks).
_GIT = [
    "git",
    "-c", "core.quotepath=false",
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicprefix=false",
    "-c", "color.ui=never",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.autocrlf=false",
    "-c", "user.name=devloop",
    "-c", "user.email=devloop@localhost",
]  # fmt: skip
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}

# Files the patch never includes: editor and patch leftovers, caches, devloop's own scratch.
SCRATCH_GLOBS = (".devloop/**", "**/*.orig", "**/*.rej", "**/__pycache__/**", "**/*.pyc", "**/.pytest_cache/**")


class WorkspaceError(Exception):
    """The workspace could not be created or read; one line, naming the repository."""


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    env = os.environ | _GIT_ENV
    proc = subprocess.run(
        [*_GIT, *args], cwd=cwd, input=input, capture_output=True, env=env, check=False
    )
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed in {cwd}: {msg[-1] if msg else proc.returncode}")
    return proc.stdout.decode(errors="replace")


def is_git_repo(path: Path) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


@dataclass
class Workspace:
    root: Path
    base: str  # git tree id of the starting state
    kind: str  # "clone" | "copy" | "in_place"
    _owned: bool = True

    @classmethod
    def create(cls, repo: Path, *, parent: Path | None = None, in_place: bool = False) -> Workspace:
        """An isolated copy of `repo` (or `repo` itself with in_place, for trees the caller owns)."""
        repo = repo.resolve()
        if not repo.is_dir():
            raise WorkspaceError(f"repository not found: {repo}")
        if in_place:
            if not (repo / ".git").exists():
                git(repo, "init", "-q")
            ws = cls(repo, "", "in_place", _owned=False)
        else:
            dest = Path(tempfile.mkdtemp(prefix="devloop-ws-", dir=parent)) / repo.name
            if is_git_repo(repo):
                _clone_with_changes(repo, dest)
                ws = cls(dest, "", "clone")
            else:
                shutil.copytree(repo, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
                git(dest, "init", "-q")
                ws = cls(dest, "", "copy")
        ws.base = ws.snapshot()
        return ws

    def snapshot(self) -> str:
        """Stage everything (respecting .gitignore) in the workspace's own index; return the tree id."""
        self._stage()
        return git(self.root, "write-tree").strip()

    def _stage(self) -> None:
        git(self.root, "add", "-A", "--ignore-errors", "--", ".", check=False)

    def diff(self) -> str:
        """The patch: the workspace against its starting state, without binary or scratch files."""
        self._stage()
        excludes = [f":(exclude,glob){g}" for g in SCRATCH_GLOBS]
        text = git(self.root, "diff", "--cached", "--no-color", "--no-ext-diff", self.base, "--", ".", *excludes)
        return drop_binary_sections(text)

    def cleanup(self) -> None:
        if self._owned and self.kind != "in_place":
            shutil.rmtree(self.root.parent, ignore_errors=True)


def drop_binary_sections(diff: str) -> str:
    """Remove the per-file sections of a git diff that are binary ("Binary files ... differ")."""
    if "\nBinary files " not in diff and not diff.startswith("Binary files "):
        return diff
    sections = re.split(r"(?m)^(?=diff --git )", diff)
    kept = [sec for sec in sections if not _is_binary_section(sec)]
    return "".join(kept)


def _is_binary_section(section: str) -> bool:
    for line in section.splitlines():
        if line.startswith("@@"):
            return False  # hunks begin: a text diff
        if line.startswith(("Binary files ", "GIT binary patch")):
            return True
    return False


def _clone_with_changes(repo: Path, dest: Path) -> None:
    has_head = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, capture_output=True, check=False
    ).returncode == 0
    if has_head:
        git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest))
        git(dest, "checkout", "-q", "--detach", git(repo, "rev-parse", "HEAD").strip())
        changes = git(repo, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
    else:  # a repository without commits: everything is uncommitted
        dest.mkdir(parents=True)
        git(dest, "init", "-q")
        changes = ""
    if changes.strip():
        git(dest, "apply", "--binary", "--whitespace=nowarn", "-", input=changes.encode())
    untracked = git(repo, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, untracked):
        src, dst = repo / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
