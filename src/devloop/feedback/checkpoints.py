"""Checkpoints of the workspace on private refs, and rollback to them.

A checkpoint is a commit (`git commit-tree` of the workspace's snapshot tree, parented on the previous
checkpoint) stored at `refs/devloop/checkpoints/<n>` in the workspace's own repository. Nothing else moves:
no branch, no HEAD, no reflog of either, and no git hooks run (commit-tree runs none). Restoring writes a
checkpoint's tree into the working tree with `git read-tree --reset -u`, which also removes files added
since and brings back deleted ones; ignored files (build outputs, caches) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devloop.workspace import Workspace

REF_PREFIX = "refs/devloop/checkpoints/"


@dataclass
class Checkpoint:
    number: int
    step: int
    commit: str
    tree: str
    patch: str  # the workspace diff at the checkpoint, to recognise the same state later
    note: str = ""
    score: tuple[int, int] = (0, 0)  # (-failing, passing) of the tests at the checkpoint

    @property
    def ref(self) -> str:
        return f"{REF_PREFIX}{self.number}"


@dataclass
class Undone:
    """What a restore changed in the working tree, by path (relative to the root)."""

    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files added after the checkpoint
    restored: list[str] = field(default_factory=list)  # files deleted after the checkpoint

    @property
    def files(self) -> list[str]:
        return [*self.modified, *self.removed, *self.restored]

    def describe(self) -> str:
        parts = [
            f"{label}: {', '.join(paths)}"
            for label, paths in (
                ("reverted", self.modified),
                ("removed (added after it)", self.removed),
                ("brought back (deleted after it)", self.restored),
            )
            if paths
        ]
        return "; ".join(parts) or "no file differed"


class Checkpoints:
    """The run's checkpoints in the workspace's repository, oldest first."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.items: list[Checkpoint] = []

    @property
    def last(self) -> Checkpoint | None:
        return self.items[-1] if self.items else None

    def save(self, step: int, patch: str, *, note: str = "", score: tuple[int, int] = (0, 0)) -> Checkpoint:
        """Commit the workspace as it is now on the next private ref. The tree is the one the step's
        patch was computed from when nothing changed since (see Workspace), so no staging repeats; the
        tree, the commit and its ref are one git process."""
        number = len(self.items) + 1
        parents = [self.items[-1].commit] if self.items else []
        message = f"devloop checkpoint {number} (step {step})" + (f": {note}" if note else "")
        tree, commit = self.workspace.commit_snapshot(parents, message, f"{REF_PREFIX}{number}")
        cp = Checkpoint(number, step, commit, tree, patch, note, score)
        self.items.append(cp)
        return cp

    def changes_since(self, cp: Checkpoint) -> Undone:
        """How the working tree now differs from `cp` (what restoring it would undo)."""
        current = self.workspace.snapshot()
        out = self.workspace.run_git(
            "diff-tree", "-r", "--no-renames", "--name-status", "-z", cp.tree, current
        )
        fields = out.split("\0")
        undone = Undone()
        for status, path in zip(fields[::2], fields[1::2], strict=False):
            bucket = {"A": undone.removed, "D": undone.restored}.get(status[:1], undone.modified)
            bucket.append(path)
        return undone

    def restore(self, cp: Checkpoint) -> Undone:
        """Make the working tree exactly `cp`'s tree (tracked and untracked-not-ignored files)."""
        undone = self.changes_since(cp)  # also stages everything, so read-tree sees every current file
        self.workspace.run_git("read-tree", "--reset", "-u", cp.tree, writes_tree=True)
        return undone

    def restore_file(self, path: str, cp: Checkpoint | None = None) -> bool:
        """Put one file back as it was at `cp` (default: the last checkpoint, else the starting state);
        a file that did not exist then is removed. Returns whether the file changed.

        All of it runs in the workspace's runtime: the file is the model's, and so is every directory
        on its way (any of which may be a link by now)."""
        tree = cp.tree if cp is not None else (self.last.tree if self.last else self.workspace.base)
        ws = self.workspace
        lit = "--literal-pathspecs"  # a path is a path, never pathspec magic
        code, _ = ws.git_status(
            [lit, "add", "-A", "--ignore-errors", "--", path],
            [lit, "diff", "--cached", "--quiet", tree, "--", path],
        )
        if code == 0:
            return False
        listed = ws.run_git(lit, "ls-tree", "--name-only", tree, "--", path).strip()
        if listed:
            ws.run_git(lit, "checkout", tree, "--", path, writes_tree=True)
        else:
            ws.run_git(lit, "rm", "-q", "-r", "-f", "--ignore-unmatch", "--", path, writes_tree=True)
        return True
