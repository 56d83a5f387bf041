"""Isolation of the user's repository, and patch extraction.

A run never touches the user's working tree. For a git repository the workspace is a `git clone --shared`
of it (objects borrowed read-only through alternates, so it is as cheap as a worktree) checked out at HEAD,
with the user's uncommitted changes (staged, unstaged and untracked, minus ignored files) replayed on top.
A clone rather than `git worktree add`: the agent's own git commands (checkout -b, commit, stash, hooks)
then stay inside the workspace instead of writing branches and worktree state into the user's repository.
A directory that is not a git repository is copied. Either way the starting state is recorded as a git
tree (`base`), and the patch is the diff of the workspace against it.

The workspace's `.git` belongs to the model: everything in it (config, hooks, attributes, a gitfile
pointing elsewhere) may be hostile. devloop's own bookkeeping (snapshots, the patch, checkpoints) uses
a private git dir beside the workspace, never inside it, with a fixed configuration that reads nothing
from the system, the user or the workspace. Once a runtime is attached, every bookkeeping git command
runs through it, i.e. inside the sandbox: git then reads the model's files (and follows its links)
only where the model could anyway, and its output is data to the host.

Most steps change nothing, so the per-step patch is not recomputed when the tree is as the last git run
saw it (the tree's inotify watch says so, else a stat scan: changes.py), and takes one git process
instead of two when only contents did (see scan.py).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devloop.safefs.tree import remove_tree
from devloop.workspace.changes import TreeScans
from devloop.workspace.clone import (
    Alongside,
    GitSeed,
    RepoReads,
    _in_run_dir,
    _not_copied,
    make_holder,
    make_tree,
    seed_private_gitdir,
    share_with_private_gitdir,
)
from devloop.workspace.gitcmd import (
    _ADD,
    _BOOK,
    _CONFIG,
    _DIFF,
    _EXCLUDES,
    _GIT,
    _GIT_ENV,
    _HEX,
    GIT_DIR_NAME,
    SCRATCH_GLOBS,
    WorkspaceError,
    _tree_id,
    drop_binary_sections,
    git,
    is_git_repo,
    isolated_git_env,
)
from devloop.workspace.scan import _GRANULARITY_NS, SCAN_LIMIT, TOO_MANY, ScanRecords, scan_tree
from devloop.workspace.state import Executor, _Failed, _Known
from devloop.workspace.steps import StepPatches

__all__ = [
    "GIT_DIR_NAME",
    "Alongside",
    "SCAN_LIMIT",
    "SCRATCH_GLOBS",
    "TOO_MANY",
    "Executor",
    "GitSeed",
    "Workspace",
    "WorkspaceError",
    "drop_binary_sections",
    "git",
    "is_git_repo",
    "isolated_git_env",
    "scan_tree",
    # used by the benchmarks and tests
    "_BOOK",
    "_CONFIG",
    "_EXCLUDES",
    "_GIT",
    "_GIT_ENV",
    "_GRANULARITY_NS",
    "_in_run_dir",
    "_not_copied",
]


@dataclass
class Workspace:
    root: Path
    base: str  # git tree id of the starting state
    kind: str  # "clone" | "copy" | "in_place"
    gitdir: Path = Path()  # devloop's private git dir (outside root)
    _owned: bool = True
    _executor: Executor | None = field(default=None, repr=False)
    _shared_objects: list[Path] = field(default_factory=list, repr=False)
    _known: _Known | None = field(default=None, repr=False)  # the last staging, and the scan before it
    git_runs: int = field(default=0, repr=False)
    # the tree's shape when the index was staged
    _staged_shape: bytes | None = field(default=None, repr=False)
    diff_unstaged: bool = field(default=True, repr=False)  # the one-process diff below (off: for the bench)
    _steps: StepPatches | None = field(default=None, repr=False)  # patches made without git (steps.py)
    scans: TreeScans = field(init=False, repr=False)  # the tree's scans and its watch (changes.py)

    def __post_init__(self) -> None:
        self.scans = TreeScans(self.root)

    @classmethod
    def create(
        cls,
        repo: Path,
        *,
        parent: Path | None = None,
        in_place: bool = False,
        alongside: Alongside | None = None,
        seed: GitSeed | None = None,
    ) -> Workspace:
        """An isolated copy of `repo` (or `repo` itself with in_place, for trees the caller owns).
        `alongside`: done once a clone's root directory exists, while git writes its files (never for a
        copy or in place); the caller joins it, whatever create did. `seed` (in place only): see GitSeed."""
        repo = repo.resolve()
        if not repo.is_dir():
            raise WorkspaceError(f"repository not found: {repo}")
        # The user's repository is read while devloop's own directories are made (see RepoReads).
        with contextlib.nullcontext() if in_place else RepoReads(repo) as reads:
            holder = make_holder(parent, GIT_DIR_NAME)
            root, kind, head_tree = make_tree(repo, holder, in_place, alongside, reads)
        ws = cls(root, "", kind, holder / GIT_DIR_NAME, _owned=kind != "in_place")
        ws._steps = StepPatches(root)
        ws._init_gitdir(seed if in_place else None)
        pristine = head_tree is not None and (ws.gitdir / "index").is_file()
        ws.base = ws._checked_out(head_tree) if pristine and head_tree else ws.snapshot()
        return ws

    def _checked_out(self, tree: str) -> str:
        """The base of a clone with nothing on top of HEAD's checkout: HEAD's `tree`. The index copied
        from that checkout holds every file of it, so it is what staging everything would give, known
        without a git run."""
        scan, _, shape = self._scanned()
        self._staged_shape = shape
        self._known = _Known(scan, tree, None) if scan is not None else None
        return tree

    def _init_gitdir(self, seed: GitSeed | None) -> None:
        """The private git dir: a clone's borrows the clone's object stores and index (see
        clone.share_with_private_gitdir), a seeded tree's the seed's; other trees are hashed into its own
        objects at the first snapshot. Never the tree's `.git`: nothing the model does to it can take
        the base away."""
        if self.kind == "clone":
            self._shared_objects = share_with_private_gitdir(self.root / ".git", self.gitdir)
        elif seed is not None:
            self._shared_objects = seed_private_gitdir(seed, self.gitdir)

    @property
    def read_only_paths(self) -> list[Path]:
        """Host paths a sandbox must show (read-only) for git to work: the user's object store."""
        return list(self._shared_objects)

    def attach(self, executor: Executor) -> None:
        """From now on run bookkeeping git through `executor` (the run's runtime): the model has
        started writing the tree. The private git dir is handed to the sandbox user."""
        from devloop.runtime.identity import hand_over

        hand_over(self.gitdir)
        self._executor = executor

    def run_git(
        self, *args: str, input: bytes | None = None, writes_tree: bool = False, timeout: float = 300.0
    ) -> str:
        """`git args` on the workspace with devloop's private git dir, inside the attached runtime
        (on the host before one is attached). Raises WorkspaceError with git's last line."""
        return self._run([list(args)], input=input, writes_tree=writes_tree, timeout=timeout)

    def git_status(self, *steps: list[str], writes_tree: bool = False) -> tuple[int | None, str]:
        """Like `_run`, but the last command's exit status is returned rather than raised."""
        try:
            return 0, self._run(list(steps), writes_tree=writes_tree, check=False)
        except _Failed as failed:
            return failed.code, failed.output

    def _run(
        self,
        steps: list[list[str]],
        *,
        input: bytes | None = None,
        writes_tree: bool = False,
        timeout: float = 300.0,
        check: bool = True,
    ) -> str:
        """Run git commands one after the other in one process (one sandbox start); the earlier ones
        are best effort (`add --ignore-errors` fails on an unreadable file but stages the rest), the
        output and status are the last one's. Every word is devloop's, never the model's."""
        if len(steps) == 1:
            argv = [*_BOOK, *steps[0]]
        else:
            *first, last = steps
            script = "".join(f"{shlex.join([*_BOOK, *step])} >/dev/null 2>&1; " for step in first)
            argv = ["sh", "-c", f"{script}exec {shlex.join([*_BOOK, *last])}"]
        verb = next((w for w in steps[-1] if not w.startswith("-")), "")
        return self._call(argv, verb, input=input, writes_tree=writes_tree, timeout=timeout, check=check)

    def _call(
        self,
        argv: list[str],
        verb: str,
        *,
        input: bytes | None = None,
        writes_tree: bool = False,
        timeout: float = 300.0,
        check: bool = True,
    ) -> str:
        if writes_tree:
            self._known = None  # git rewrites files: what the last scan saw is no longer the tree
            self._forget_steps()
        self._staged_shape = None  # any command may write the index; the callers that stage set it again
        self.git_runs += 1
        code, out, err = self._git_where(
            argv, self.root, input=input, timeout=timeout, root_writable=writes_tree
        )
        if code != 0 and not check:
            raise _Failed(code, out.decode(errors="replace"))
        if code != 0:
            said = err.decode(errors="replace").strip().splitlines()
            why = said[-1] if said else ("timed out" if code is None else f"exit {code}")
            raise WorkspaceError(f"git {verb} failed in {self.root}: {why}")
        return out.decode(errors="replace")

    def _git_where(
        self,
        argv: list[str],
        tree: Path,
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        root_writable: bool = True,
    ) -> tuple[int | None, bytes, bytes]:
        """(status, stdout, stderr) of `argv` run with devloop's private git dir as the repository and
        `tree` as its work tree (and cwd): here until a runtime is attached, then where the model's
        commands run, the private git dir shown read-write to this command only."""
        env = isolated_git_env()
        env.update(GIT_DIR=str(self.gitdir), GIT_WORK_TREE=str(tree))
        if self._executor is None:
            proc = subprocess.run(argv, cwd=tree, input=input, capture_output=True, env=env, check=False,
                                  timeout=timeout)  # fmt: skip
            return proc.returncode, proc.stdout, proc.stderr
        limit = {} if timeout is None else {"timeout": timeout}  # else the runtime's own default
        done = self._executor.exec(argv, input=input, env=env, rw_binds=[self.gitdir],
                                   root_writable=root_writable, cwd=tree, **limit)  # fmt: skip
        return done.returncode, done.stdout, done.stderr  # type: ignore[attr-defined]

    def _forget_steps(self) -> None:
        if self._steps is not None:
            self._steps.forget()

    @property
    def patches_without_git(self) -> int:
        """Patches computed in-process (see steps.py), for the tests and benchmarks."""
        return self._steps.made if self._steps is not None else 0

    def _scanned(
        self, records: ScanRecords | None = None, *, fresh: bool = False
    ) -> tuple[bytes | None, _Known | None, bytes | None]:
        """This moment's scan (TreeScans.now; `fresh`: a whole one), what the last git run found if the tree
        is as it was then, and the tree's shape, each None when unknown; `records` filled as it goes."""
        scan, shape = self.scans.now(records, fresh=fresh)
        known = self._known
        return scan, known if scan is not None and known is not None and known.scan == scan else None, shape

    def patch_if_unchanged(self) -> str | None:
        """The patch without a scan or a git run when the tree's watch says nothing changed since it was
        last computed; None when that cannot be told so (then `diff` computes it)."""
        known = self._known
        if known is None or known.patch is None or not self.scans.unchanged_since(known.scan):
            return None
        return known.patch

    def snapshot(self) -> str:
        """Stage everything (respecting .gitignore) in the private index; return the tree id. A tree
        unchanged since the last staging (see the module's doc) is that staging's tree, with no new
        staging (only `write-tree` if that staging was a patch's)."""
        scan, known, shape = self._scanned()
        if known is not None and known.tree is None and known.staged:
            known.tree = self._run([["write-tree"]]).strip()  # the index holds that staging still
            self._staged_shape = shape
        if known is not None and known.tree is not None:
            return known.tree
        tree = self._run([_ADD, ["write-tree"]]).strip()
        self._staged_shape = shape
        self._known = _Known(scan, tree, None) if scan is not None else None
        return tree

    def diff(self, *, fresh: bool = False) -> str:
        """The patch: the workspace against its starting state, without binary or scratch files. When
        nothing changed since the last staging it is that staging's patch, with no git run, and when only
        files the patch covers were rewritten it is often computed without git (steps.py). Whether
        anything changed is the tree's watch's word, else a stat scan's; `fresh`: always a scan's."""
        records = ScanRecords() if self._steps is not None and self.diff_unstaged else None
        scan, known, shape = self._scanned(records, fresh=fresh)
        if known is not None and known.patch is None and known.tree == self.base:
            known.patch = ""
        if known is not None and known.patch is not None:
            return known.patch
        base = _tree_id(self.base)
        staged, staged_shape, text = True, shape, None
        tree: str | None = None  # written only if a checkpoint asks (snapshot)
        if known is not None and known.tree is not None:  # staged already (a checkpoint): two trees
            staged_shape = self._staged_shape
            text = self._run([[*_DIFF, base, _tree_id(known.tree), "--", ".", *_EXCLUDES]])
            tree = known.tree
        elif self.diff_unstaged and shape is not None and shape == self._staged_shape:
            # The same paths with the same modes and ignore files as when the index was staged: staging
            # again would only refresh contents, which a diff of the work tree against the base reads
            # anyway, so one git process instead of `add -A` plus `diff --cached`.
            staged_shape = self._staged_shape
            text = self._steps.patch(records) if self._steps is not None and records is not None else None
            try:
                if text is None:
                    text = self._run([[*_DIFF, base, "--", ".", *_EXCLUDES]])
                staged = False
            except WorkspaceError:  # e.g. a file it cannot read, which staging skips: stage as usual
                staged_shape = shape
        if text is None:
            text = self._run([_ADD, [*_DIFF, "--cached", base, "--", ".", *_EXCLUDES]])
        self._staged_shape = staged_shape
        patch = drop_binary_sections(text)
        self._known = _Known(scan, tree, patch, staged) if scan is not None else None
        if self._steps is not None and records is not None:
            self._steps.learn(records, patch)
        return patch

    def commit_snapshot(self, parents: Sequence[str], message: str, ref: str) -> tuple[str, str]:
        """Commit the workspace as it is now (on `parents`) and point `ref` at it, in one git process;
        (tree, commit). The tree is the last staging's when nothing changed since (no new staging). No
        hook runs (commit-tree has none) and nothing else moves."""
        if not ref.startswith("refs/devloop/") or not re.fullmatch(r"[A-Za-z0-9/_-]+", ref):
            raise WorkspaceError(f"commit: bad ref {ref!r}")
        scan, known, shape = self._scanned()
        staged_shape = self._staged_shape
        if known is not None and known.tree is not None:
            script = f"t={_tree_id(known.tree)}; "
        else:  # stage unless the index holds the tree already, then write it
            held = known is not None and known.staged
            stage = "" if held else f"{shlex.join([*_BOOK, *_ADD])} >/dev/null 2>&1; "
            staged_shape = staged_shape if held else shape
            script = f"{stage}t=$({shlex.join([*_BOOK, 'write-tree'])}) || exit; "
        words = [*_BOOK, "commit-tree", *(w for p in parents for w in ("-p", _tree_id(p))), "-m", message]
        script += (
            f'c=$({shlex.join(words)} "$t") && {shlex.join([*_BOOK, "update-ref", ref])} "$c" && echo "$t $c"'
        )
        tree, _, commit = self._call(["sh", "-c", script], "commit-tree").strip().partition(" ")
        if not (_HEX.fullmatch(tree) and _HEX.fullmatch(commit)):
            raise WorkspaceError(f"git commit-tree failed in {self.root}: no commit id")
        self._staged_shape = staged_shape
        if known is not None:
            known.tree, known.staged = tree, True
        elif scan is not None:
            self._known = _Known(scan, tree, None)
        return tree, commit

    def git_in(self, where: Path, *args: str, input: bytes | None = None) -> bool:
        """Whether `git args` (e.g. `apply -R -`, no `--index`) succeeds on the tree at `where` (the
        workspace or a directory in it), run where the model's commands run."""
        # devloop's private git dir stands in for the repository, so the model's .git (config, filters,
        # attributes in .git/info) is never read; `where` is only the tree the patch applies to.
        self._known = None  # it may write the tree (`apply`)
        self._forget_steps()
        self.git_runs += 1
        return self._git_where([*_GIT, *args], Path(where), input=input)[0] == 0

    def export(self, name: str) -> Path:
        """A copy of the workspace as it is now in `root/.devloop/<name>/`, as its own git repository (see
        workspace/export.py)."""
        from devloop.workspace.export import export_copy

        return export_copy(self, name)

    def stop_watching(self) -> None:
        """Close the tree's watch (its file descriptor); every later patch takes its scan."""
        self.scans.close()

    def cleanup(self, *, later: bool = False) -> None:
        """Remove the workspace (never following a link in it); `later`: in the background thread of
        runtime/later.py, which the process waits for before it exits (the watch's close goes there too:
        the kernel waits out a grace period to drop its watches, 5-15 ms)."""
        holder = self.gitdir.parent if self.kind == "in_place" else self.root.parent
        if later:
            from devloop.runtime.later import call_later, remove_later

            call_later(self.scans.close)
            remove_later(holder)
        else:
            self.stop_watching()
            remove_tree(holder)
