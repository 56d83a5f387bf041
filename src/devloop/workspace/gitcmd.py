"""devloop's own git: a fixed configuration that reads nothing from the system, the user or the
repository, an environment of fixed values only, and the patch helpers built on it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# A configuration that owes nothing to the system, the user or the repository: no hooks, no fsmonitor,
# no attributes file, no external diff or textconv (`--no-ext-diff --no-textconv` where it applies),
# and stat checks that survive the workspace being handed to the sandbox user (uid, inode and sub-second
# times are not compared). ctime's whole second is: a rewrite that keeps size and mtime (`touch -r`) must
# still be seen; the chown of the hand-over costs one re-hash of the tree, once.
_CONFIG = (
    "core.quotepath=false", "diff.noprefix=false", "diff.mnemonicprefix=false", "color.ui=never",
    "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null", "core.autocrlf=false", "core.safecrlf=false", "core.trustctime=true",
    "core.checkStat=minimal", "core.untrackedCache=false", "core.symlinks=true", "safe.directory=*",
    "diff.ignoreSubmodules=all", "submodule.recurse=false", "user.name=devloop", "user.email=devloop@localhost",
    "gc.auto=0",
)  # fmt: skip
_GIT = ["git", *(arg for item in _CONFIG for arg in ("-c", item))]
# For devloop's private index only (never a user's): the untracked cache lets `add -A` skip reading the
# directories whose mtime did not change, most of a large tree's cost.
_BOOK = [*_GIT, "-c", "core.untrackedCache=true"]
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}  # fmt: skip
GIT_DIR_NAME = ".devloop-git"

# Files the patch never includes: editor and patch leftovers, caches, devloop's own scratch.
SCRATCH_GLOBS = (
    ".devloop/**",
    "**/*.orig",
    "**/*.rej",
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.pytest_cache/**",
    "**/.devloop-run",  # devloop's run-directory marker: a model's copy would hide files from later runs
)
_EXCLUDES = [f":(exclude,glob){g}" for g in SCRATCH_GLOBS]


class WorkspaceError(Exception):
    """The workspace could not be created or read; one line, naming the repository."""


def isolated_git_env(home: str | None = None) -> dict[str, str]:
    """The whole environment for a git that must read no configuration but the command line's: fixed
    values only, nothing of this process's (no API key can reach a filter or hook, wherever git runs)."""
    env = dict(_GIT_ENV)
    env["HOME"] = env["XDG_CONFIG_HOME"] = home or "/nonexistent"
    return env


def git(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """Run git in `cwd` on the host with the isolated configuration. Only for trees devloop trusts (the
    user's own repository, a mirror, a tree no model has touched yet): it still reads `cwd`'s .git."""
    proc = subprocess.run(
        [*_GIT, *args], cwd=cwd, input=input, capture_output=True, env=isolated_git_env(), check=False
    )
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed in {cwd}: {msg[-1] if msg else proc.returncode}")
    return proc.stdout.decode(errors="replace")


def is_git_repo(path: Path) -> bool:
    proc = subprocess.run(
        [*_GIT, "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True, check=False,
        env=isolated_git_env(),
    )  # fmt: skip
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


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


_ADD = ["add", "-A", "--ignore-errors", "--", "."]
_DIFF = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all"]
_HEX = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _tree_id(value: str) -> str:
    """`value` if it is an object id (what devloop passes as revisions), else WorkspaceError."""
    if not _HEX.fullmatch(value):
        raise WorkspaceError(f"not an object id: {value!r}")
    return value
