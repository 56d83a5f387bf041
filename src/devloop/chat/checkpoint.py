"""Per-turn checkpoints of the user's tree, kept in a private bare git dir outside the tree.

The user's .git is never read or written: the model works in this tree and can write its .git (config,
hooks), so git runs here with devloop's own git dir, the isolated configuration and a throwaway index.
The user's branches, index and HEAD are untouched; a checkpoint is a commit on a private ref
`refs/devloop/chat/<session>/turn-<n>`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

# devloop.workspace (git's isolated environment) loads when git first runs: a session that already has
# its git dir opens without it, before the first prompt.

_IDENTITY = {
    "GIT_AUTHOR_NAME": "devloop",
    "GIT_AUTHOR_EMAIL": "devloop@localhost",
    "GIT_COMMITTER_NAME": "devloop",
    "GIT_COMMITTER_EMAIL": "devloop@localhost",
}


class Checkpoints:
    def __init__(self, repo: Path, gitdir: Path, session: str) -> None:
        self.repo = repo.resolve()
        self.gitdir = gitdir
        self.session = session
        if not (gitdir / "HEAD").is_file():
            from devloop.workspace import _GIT, isolated_git_env

            gitdir.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*_GIT, "init", "-q", "--bare", str(gitdir)], env=isolated_git_env(),
                           capture_output=True, check=True)  # fmt: skip

    def ref(self, turn: int) -> str:
        return f"refs/devloop/chat/{self.session}/turn-{turn}"

    def _git(self, *args: str, index: Path) -> str:
        from devloop.workspace import _GIT, WorkspaceError, isolated_git_env

        env = isolated_git_env() | _IDENTITY
        env.update(GIT_DIR=str(self.gitdir), GIT_WORK_TREE=str(self.repo), GIT_INDEX_FILE=str(index))
        proc = subprocess.run([*_GIT, *args], cwd=self.repo, env=env, capture_output=True, check=False)
        if proc.returncode != 0:
            said = proc.stderr.decode(errors="replace").strip().splitlines()
            raise WorkspaceError(f"checkpoint: git {args[0]} failed: {said[-1] if said else proc.returncode}")
        return proc.stdout.decode(errors="replace")

    def save(self, turn: int) -> str:
        """Record the tree as it is before `turn` (tracked and untracked, .gitignore respected)."""
        with tempfile.TemporaryDirectory(prefix="devloop-cp-") as tmp:
            index = Path(tmp) / "index"
            self._git("add", "-A", "--ignore-errors", "--", ".", ":(exclude).devloop", index=index)
            tree = self._git("write-tree", index=index).strip()
            commit = self._git("commit-tree", tree, "-m", f"before turn {turn}", index=index).strip()
            self._git("update-ref", self.ref(turn), commit, index=index)
        return commit

    def turns(self) -> list[int]:
        with tempfile.TemporaryDirectory(prefix="devloop-cp-") as tmp:
            out = self._git("for-each-ref", "--format=%(refname)", f"refs/devloop/chat/{self.session}/",
                            index=Path(tmp) / "index")  # fmt: skip
        return sorted(int(r.rsplit("-", 1)[1]) for r in out.split())

    def restore(self, turn: int) -> None:
        """Make the tree what it was before `turn`: files changed since are put back, files created
        since are removed (ignored files are left alone). git does the writes, so a symlink the model
        planted in the tree is replaced, never followed."""
        with tempfile.TemporaryDirectory(prefix="devloop-cp-") as tmp:
            index = Path(tmp) / "index"
            self._git("read-tree", f"{self.ref(turn)}^{{tree}}", index=index)
            self._git("clean", "-f", "-d", "-q", "-e", ".devloop", index=index)
            self._git("checkout-index", "-a", "-f", index=index)
            for ref in (self.ref(t) for t in self.turns() if t > turn):
                self._git("update-ref", "-d", ref, index=index)


def store_root(repo: Path) -> Path:
    """Where chat keeps this repository's sessions and checkpoints: the user data dir, outside the tree,
    so nothing the model writes in the tree can rewrite the history it is undone from."""
    import hashlib

    import platformdirs

    base = Path(os.environ.get("DEVLOOP_CHAT_HOME") or Path(platformdirs.user_data_dir("devloop")) / "chat")
    resolved = repo.resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    return base / f"{resolved.name}-{key}"


def diff_since(checkpoints: Checkpoints, turn: int) -> str:
    """The tree now against the checkpoint before `turn` (text files; binary ones named)."""
    with tempfile.TemporaryDirectory(prefix="devloop-cp-") as tmp:
        index = Path(tmp) / "index"
        checkpoints._git("read-tree", checkpoints.ref(turn), index=index)
        checkpoints._git("add", "-A", "--ignore-errors", "--", ".", ":(exclude).devloop", index=index)
        return checkpoints._git("diff", "--cached", "--no-ext-diff", "--no-textconv", "--no-color",
                                checkpoints.ref(turn), "--", index=index)  # fmt: skip
