"""Getting a task's tree at base_commit out of a local mirror, and applying patches to it."""

from __future__ import annotations

import functools
import io
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from devloop.eval.paths import remove_beneath, unlink_file_beneath
from devloop.parse.diffs import parse_diff
from devloop.tasks.mirrors import mirror_candidates
from devloop.tasks.model import Task
from devloop.tasks.safety import component_problem, path_problem, shown

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


class SourceError(Exception):
    """The task's repository or commit could not be found or read; one line naming both."""


class NoRepository(SourceError):
    """No repository for the task where it was looked for; `repo` is the task's owner/name."""

    def __init__(self, message: str, repo: str):
        super().__init__(message)
        self.repo = repo


def find_repository(task: Task, mirrors: Path | None) -> Path:
    """The git repository holding the task's sources: `repo_path`, else its mirror under `mirrors`
    (`<owner>__<name>` or `<owner>+<name>/repo`: devloop.tasks.mirrors)."""
    candidates: list[Path] = []
    if task.repo_path is not None:
        candidates.append(Path(task.repo_path))
    if mirrors is not None:
        # Checked at load too; again here so a Task built in code cannot name `<mirrors>/..`.
        if (problem := component_problem(task.mirror_name)) is not None:
            raise SourceError(
                f"{task.instance_id}: repo {shown(task.repo)}: as a mirror directory name: {problem}"
            )
        candidates += mirror_candidates(Path(mirrors), task.repo)
    for path in candidates:
        if path.is_dir():
            return path
    if not candidates:
        raise SourceError(
            f"{task.instance_id}: no repository: the record has no repo_path and no --mirrors given"
        )
    raise NoRepository(
        f"{task.instance_id}: no repository for {task.repo}: looked in {', '.join(map(str, candidates))}",
        task.repo,
    )


def _git(repo: Path, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **_GIT_ENV},
        check=False,
    )


_CANNOT_READ = re.compile(r"cannot read '([0-9a-f]{40,64})'")


def _missing_blob(repo: Path, commit: str, error: str) -> str:
    """`error`, with the paths that name the blob git could not read: a partial copy of a repository
    (a snapshot made without its largest files) lists a file it does not hold, and the path says which
    piece of the tree is missing where the object id alone does not."""
    if (found := _CANNOT_READ.search(error)) is None:
        return error
    blob = found.group(1)
    listed = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
    paths = [
        entry.split("\t", 1)[1]
        for entry in listed.stdout.decode(errors="surrogateescape").split("\0")
        if "\t" in entry and entry.split("\t", 1)[0].split()[2:3] == [blob]
    ]
    if not paths:
        return error
    return (
        f"the repository lacks {shown(paths[0])}{f' (and {len(paths) - 1} more)' if len(paths) > 1 else ''}"
        f" (blob {blob[:12]}): it lists the file but does not hold its content, a partial copy such as a"
        " snapshot made without its largest files"
    )


@dataclass(frozen=True)
class BaseFiles:
    """Some paths as they are at base_commit, kept from the tree's extraction (before any install or
    patch touched the tree), so that putting them back needs no second read of the repository.

    `paths`: the paths asked for; `archive`: a tar of those of them that exist at base (files and
    links), or None when one of them is a directory there (then only the repository can say what is
    under it)."""

    paths: frozenset[str]
    archive: bytes | None

    def covers(self, paths: Collection[str]) -> bool:
        return self.archive is not None and set(paths) <= self.paths


def _keep(archive: tarfile.TarFile, paths: frozenset[str]) -> BaseFiles:
    members = archive.getmembers()
    dirs = {m.name for m in members if m.isdir()}
    dirs |= {m.name.rsplit("/", 1)[0] for m in members if "/" in m.name}
    if paths & dirs:
        return BaseFiles(paths, None)
    kept = io.BytesIO()
    with tarfile.open(fileobj=kept, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member in members:
            if member.name in paths and (member.isfile() or member.issym()):
                out.addfile(member, archive.extractfile(member) if member.isfile() else None)
    return BaseFiles(paths, kept.getvalue())


def _archive(
    repo: Path, commit: str, dest: Path, paths: list[str] | None = None, keep: frozenset[str] = frozenset()
) -> BaseFiles:
    """`git archive commit [paths] | tar -x -C dest`, streamed; nothing is written into the repository.
    Returns `keep`'s paths as they are in the archive."""
    with tempfile.TemporaryFile() as tar:
        proc = _git(
            repo, "archive", "--format=tar", commit, *(["--", *paths] if paths else []), stdout=tar.fileno()
        )
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            last = err[-1] if err else str(proc.returncode)
            raise SourceError(
                f"git archive {commit[:12]} in {repo} failed: {_missing_blob(repo, commit, last)}"
            )
        tar.seek(0)
        with tarfile.open(fileobj=tar, mode="r:") as archive:
            archive.extractall(dest, filter="tar")
            return _keep(archive, keep) if keep else BaseFiles(keep, b"")


def extract(task: Task, mirrors: Path | None, dest: Path) -> Path:
    """Write the tree of `task.base_commit` into `dest` (created; must be empty) and return it."""
    return extract_keeping(task, mirrors, dest, ())[0]


def extract_keeping(
    task: Task, mirrors: Path | None, dest: Path, paths: Collection[str]
) -> tuple[Path, BaseFiles]:
    """`extract`, also keeping `paths` as they are at base (for `reset_to_base`)."""
    repo = find_repository(task, mirrors)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        # A commit, never some other object.
        kept = _archive(repo, f"{task.base_commit}^{{commit}}", dest, keep=frozenset(paths))
    except SourceError:
        # Asked only when the archive failed: one git process fewer per instance on the common path.
        if _git(repo, "cat-file", "-e", f"{task.base_commit}^{{commit}}").returncode != 0:
            raise SourceError(f"{task.instance_id}: commit {task.base_commit} is not in {repo}") from None
        raise
    return dest, kept


def pack_base_tree(task: Task, mirrors: Path | None, pack_dir: Path) -> str | None:
    """Write the objects of base_commit's tree (the tree, its subtrees and blobs; no commit, no history)
    from the repository as one pack into `pack_dir` (created), and return the tree's id; None when the
    repository cannot give them (the tree's files are then hashed instead). Nothing is written into the
    repository. The pack is the history-free part a task's tree needs: it holds nothing of the fix."""
    repo = find_repository(task, mirrors)
    listed = _git(repo, "rev-list", "--objects", "--no-object-names", f"{task.base_commit}^{{tree}}")
    ids = listed.stdout.split()
    if listed.returncode != 0 or not ids:
        return None
    pack_dir.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(
        ["git", "-C", str(repo), "pack-objects", "-q", str(pack_dir / "pack")], input=b"\n".join(ids) + b"\n",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **_GIT_ENV}, check=False,
    )  # fmt: skip
    return ids[0].decode() if packed.returncode == 0 else None


def reset_to_base(
    task: Task, mirrors: Path | None, tree: Path, paths: list[str], base: BaseFiles | None = None
) -> None:
    """Put `paths` back as they are at base_commit: restored if they exist there, else deleted. From
    `base` (kept at extraction) when it covers them, else read from the repository again.

    The tree is hostile (install commands and the model's patch wrote it): every path must be relative,
    normalised and outside .git/ (else SourceError, before anything is touched), and is deleted without
    following any link, a symlink where a directory belongs being removed itself (see harness.paths).
    """
    for rel in paths:
        if (problem := path_problem(rel)) is not None:
            raise SourceError(f"{task.instance_id}: refusing to reset test path {shown(rel)}: it {problem}")
    kept = base.archive if base is not None and base.covers(paths) else None
    repo = find_repository(task, mirrors) if kept is None else None
    existing: set[str] = set()
    if repo is not None and paths:  # -z: names as they are, not C-quoted
        listed = _git(repo, "ls-tree", "-r", "-z", "--name-only", task.base_commit, "--", *paths)
        existing = {name for name in listed.stdout.decode(errors="surrogateescape").split("\0") if name}
    for rel in paths:
        try:
            remove_beneath(tree, rel)
        except OSError as exc:
            raise SourceError(
                f"{task.instance_id}: cannot reset test path {shown(rel)}: {exc.strerror}"
            ) from None
    if kept:  # b"": nothing was asked to be kept (no paths)
        with tarfile.open(fileobj=io.BytesIO(kept), mode="r:") as archive:
            # Only the paths asked for: an archive kept for more puts back no others.
            members = [m for m in archive.getmembers() if m.name in paths]
            archive.extractall(tree, members=members, filter="tar")
    elif repo is not None and existing:
        _archive(repo, task.base_commit, tree, sorted(existing))


@dataclass
class ApplyResult:
    """Whether a patch applied, with which command, and the output of every attempt."""

    applied: bool
    method: str | None
    log: str


PatchRunner = Callable[[Sequence[str], bytes], tuple[int, str]]
"""`(argv, patch) -> (exit code, output)`: runs `argv` in the tree with `patch` on stdin (see TaskBox)."""

# git must read no configuration, attributes or repository the tree (model-written) could supply: no
# system or global config, and a GIT_DIR that can never exist, so no `.git` in the tree is discovered
# (a repository's config can name commands; outside one, `git apply` reads nothing of it).
APPLY_ENV = {**_GIT_ENV, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
             "GIT_ATTR_NOSYSTEM": "1", "GIT_DIR": "/dev/null/no-repository"}  # fmt: skip


def _run(cmd: Sequence[str], patch: bytes, cwd: Path) -> tuple[int, str]:
    """A PatchRunner on this machine (for `--sandbox none`)."""
    env = {**os.environ, **APPLY_ENV}
    proc = subprocess.run(list(cmd), cwd=cwd, input=patch, capture_output=True, env=env, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


def _clean_rejects(tree: Path, patch: str) -> None:
    """Delete the `.rej`/`.orig` files a fallback apply left beside the patch's files: regular files only,
    never through a link, and never for an unsafe path (those are refused before any apply)."""
    for f in parse_diff(patch):
        for rel in (f.new_path, f.old_path):
            for leftover in (f"{rel}.rej", f"{rel}.orig") if rel else ():
                unlink_file_beneath(tree, leftover)


def apply_patch(tree: Path, patch: str, *, fallbacks: bool = True, runner: PatchRunner | None = None
                ) -> ApplyResult:  # fmt: skip
    """Apply `patch` to `tree` as the official harness does: `git apply`, then `git apply --reject`,
    then `patch --batch --fuzz=5 -p1`. `fallbacks=False` tries only `git apply` (used for test patches).
    Like the official harness, hunks that `git apply --reject` did apply stay in place for `patch`.

    `runner` runs each command in the tree (a TaskBox runs them in the sandbox); by default they run
    here. Either way git gets APPLY_ENV: the tree need not be, and is never treated as, a repository.
    """
    text = patch if patch.endswith("\n") else patch + "\n"
    data = text.encode("utf-8", errors="surrogateescape")
    run = runner or functools.partial(_run, cwd=tree)
    attempts = [("git apply", ["git", "apply", "--verbose", "-"])]
    if fallbacks:
        attempts += [
            ("git apply --reject", ["git", "apply", "--verbose", "--reject", "-"]),
            ("patch --fuzz=5", ["patch", "--batch", "--fuzz=5", "-p1", "--no-backup-if-mismatch"]),
        ]
    log: list[str] = []
    for name, cmd in attempts:
        code, out = run(cmd, data)
        log.append(f"$ {name}\n{out.rstrip()}\n(exit {code})\n")
        if code == 0:
            _clean_rejects(tree, patch)
            return ApplyResult(True, name, "\n".join(log))
    return ApplyResult(False, None, "\n".join(log))
