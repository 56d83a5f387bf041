"""A copy of a workspace as it is now, for work that must not touch the agent's tree (feedback/minimize.py
tries patches on it)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from devloop.workspace.gitcmd import _GIT, WorkspaceError, _tree_id

if TYPE_CHECKING:
    from devloop.workspace import Workspace


def export_copy(ws: Workspace, name: str) -> Path:
    """A copy of `ws` as it is now (tracked and untracked-not-ignored files) in `root/.devloop/<name>/`,
    made where the model's commands run, as its own git repository. `.devloop/` is never part of the
    patch. The files come from devloop's snapshot of the tree (its private git dir, a private index)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise WorkspaceError(f"export: bad name {name!r}")
    tree = ws.snapshot()
    dest = ws.root / ".devloop" / name
    index = ws.gitdir / f"index.{name}"
    git_words = shlex.join(_GIT)
    script = (
        f"set -e; rm -rf -- {shlex.quote(str(dest))}; mkdir -p -- {shlex.quote(str(dest))}; "
        f"GIT_INDEX_FILE={shlex.quote(str(index))} {git_words} read-tree {_tree_id(tree)}; "
        f"GIT_INDEX_FILE={shlex.quote(str(index))} {git_words} checkout-index -a -f "
        f"--prefix={shlex.quote(str(dest) + '/')}; rm -f -- {shlex.quote(str(index))}; "
        f"cd -- {shlex.quote(str(dest))}; unset GIT_DIR GIT_WORK_TREE; {git_words} init -q"
    )
    code, _, err = ws._git_where(["sh", "-c", script], ws.root)
    if code != 0:
        said = err.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"could not copy the workspace to {dest}: {said[-1] if said else code}")
    return dest
