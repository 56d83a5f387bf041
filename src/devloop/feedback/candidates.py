"""The tree a minimisation tries its candidate patches in: one candidate applied at a time, moved
between candidates with git apply (run where the model's commands run when there is a workspace), and
the cached bytecode of the files they touch dropped at each switch."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from devloop.feedback.base import TestRunner
from devloop.parse.diffs import touched_paths
from devloop.workspace import Workspace
from devloop.workspace.state import Executor


class CandidateTree:
    """A directory holding one candidate patch at a time (moved between candidates with git apply).

    With a workspace, git runs where the model's commands run (the tree and its `.git` are the model's)."""

    def __init__(
        self, root: Path, runner: TestRunner, applied: str, workspace: Workspace | None = None
    ) -> None:
        self.root, self.runner, self.applied, self.workspace = root, runner, applied, workspace

    def _apply(self, patch: str, *, reverse: bool = False) -> bool:
        args = ["apply", "--recount", "--whitespace=nowarn", *(["-R"] if reverse else []), "-"]
        if self.workspace is not None:
            return self.workspace.git_in(self.root, *args, input=patch.encode())
        proc = subprocess.run(
            ["git", *args], cwd=self.root, input=patch.encode(), capture_output=True, check=False
        )
        return proc.returncode == 0

    def switch(self, patch: str) -> bool:
        if patch == self.applied:
            return True
        leaving = self.applied  # its files' bytecode is stale whichever state the tree ends in
        try:
            if self.applied and not self._apply(self.applied, reverse=True):
                raise RuntimeError(f"could not take the candidate patch back out of {self.root}")
            if not patch or self._apply(patch):
                self.applied = patch
                return True
            if self.applied and not self._apply(self.applied):
                raise RuntimeError(f"could not re-apply the patch in {self.root}")
            return False
        finally:
            self._forget_bytecode(patch, leaving)

    def _forget_bytecode(self, *patches: str) -> None:
        executor = self.workspace._executor if self.workspace is not None else None
        forget_bytecode(self.root, patches, executor)


def forget_bytecode(root: Path, patches: Sequence[str], executor: Executor | None) -> None:
    """Remove the cached bytecode of the Python files `patches` touch, under `root`. Python trusts a
    .pyc whose source kept its size and mtime second, and two states of a file often differ by a
    same-size edit (`a - b` / `a + b`) made within the second (a candidate switch, a rollback, a quick
    re-edit): tests run after it would run the previous state's code. With `executor` (the model's
    tree) the removal runs where the model's commands run; without, here, never through a link."""
    caches = sorted({(Path(p).parent / "__pycache__", Path(p).stem) for q in patches
                     for p in touched_paths(q) if p.endswith(".py")})  # fmt: skip
    if caches and executor is not None:
        rm = [f"rm -f -- {shlex.quote(str(root / d / stem))}.*.pyc" for d, stem in caches]
        executor.exec(["bash", "-c", "; ".join(rm)], cwd=root, root_writable=True)
        return
    for d, stem in caches:
        here = root
        if any((here := here / part).is_symlink() for part in d.parts) or not here.is_dir():
            continue
        for pyc in here.glob(f"{stem}.*.pyc"):
            if not pyc.is_symlink():
                with contextlib.suppress(OSError):  # e.g. a directory by that name: left as it is
                    pyc.unlink(missing_ok=True)
