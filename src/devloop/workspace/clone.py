"""The starting state of a workspace: a shared clone of a git repository with the user's uncommitted
changes replayed on top, or a copy of a plain directory (what it leaves out)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from devloop.workspace.gitcmd import _GIT, _HEX, WorkspaceError, git, isolated_git_env


def make_tree(
    repo: Path,
    holder: Path,
    in_place: bool,
    alongside: Alongside | None = None,
    reads: RepoReads | None = None,
) -> tuple[Path, str, str | None]:
    """The workspace's tree in `holder`, its kind (see Workspace) and, when it is a clone's checkout of
    HEAD with nothing on top, HEAD's tree id (else None): `repo` itself, a shared clone of it with its
    uncommitted changes, or a copy of a plain directory (with a fresh `git init`). `alongside` is
    done once a clone's root directory exists, while git writes its files. `reads`: RepoReads started
    on `repo` earlier (the caller ends them), else they are started and ended here."""
    if in_place:
        if not (repo / ".git").exists():
            git(repo, "init", "-q")
        return repo, "in_place", None
    if reads is None:
        with RepoReads(repo) as started:
            return make_tree(repo, holder, in_place, alongside, started)
    dest = holder / repo.name
    head = reads.head()
    if head is not None:
        return dest, "clone", head.tree if _clone_with_changes(repo, dest, head, reads, alongside) else None
    shutil.copytree(repo, dest, symlinks=True, ignore=_not_copied)
    git(dest, "init", "-q")
    return dest, "copy", None


class RepoReads:
    """The git processes that read the user's repository for a clone (HEAD, the uncommitted changes,
    the untracked files, the refs), all started at once so that they run while the caller makes its
    own directories and writes the clone. Each result is collected once, when first needed; leaving
    the `with` ends every process still running (a plain directory's reads simply fail)."""

    _HEAD = ["rev-parse", "--show-toplevel", "--git-path", "objects", "--git-path", "shallow",
             "--show-object-format", "HEAD^{commit}", "HEAD^{tree}", "--symbolic-full-name", "HEAD", "--"]  # fmt: skip
    _DIFF = ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"]

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._ended: dict[str, tuple[int, bytes, bytes]] = {}
        try:
            self._procs["head"] = start_git(repo, *self._HEAD)
            self._procs["diff"] = start_git(repo, *self._DIFF)
            self._procs["ls-files"] = start_git(repo, "ls-files", "--others", "--exclude-standard", "-z")
            refs = ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags"]
            self._procs["refs"] = start_git(repo, *refs)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RepoReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ended(self, name: str) -> tuple[int, bytes, bytes]:
        """That read's exit status and output (waiting for it to end)."""
        if name not in self._ended:
            self._ended[name] = finish_git(self._procs[name])
        return self._ended[name]

    def said(self, name: str) -> str:
        """That read's output; WorkspaceError with git's last line if it failed."""
        return _said(self.ended(name), self.repo, name)

    def close(self) -> None:
        for name in self._procs:
            if name not in self._ended:
                self.ended(name)

    def head(self) -> Head | None:
        """HEAD (see Head) if the repository is the top of a git repository, None when it is not one or
        HEAD has no commit yet (the caller copies the directory)."""
        code, out, _ = self.ended("head")
        lines = out.decode(errors="replace").splitlines()
        repo = self.repo
        if not lines or Path(lines[0]).resolve() != repo.resolve():
            return None
        if code != 0 or len(lines) < 6 or not all(_HEX.fullmatch(x) for x in lines[4:6]):
            return None
        objects, shallow = (repo / lines[1]).resolve(), repo / lines[2]
        return Head(
            lines[4],
            lines[5],
            objects if objects.is_dir() else None,
            lines[3] if lines[3] in ("sha1", "sha256") else "",
            lines[6] if len(lines) > 6 and lines[6].startswith("refs/heads/") else "",
            shallow if shallow.is_file() else None,
        )


class Alongside:
    """Work that needs only the workspace's root directory to exist (a shell starting in it), done while
    git writes the tree's files, so that the two waits overlap. It runs in the creating thread (a child
    process it starts may hold a parent-death signal, which fires when the thread that forked it ends);
    its exception is kept for `join()`, which returns its result (None if it never ran)."""

    def __init__(self, work: Callable[[Path], object]) -> None:
        self._work = work
        self._outcome: tuple[bool, object] | None = None

    def run(self, root: Path) -> None:
        try:
            self._outcome = (True, self._work(root))
        except Exception as exc:  # the caller's, at join()
            self._outcome = (False, exc)

    def join(self) -> object:
        if self._outcome is None:
            return None
        ok, value = self._outcome
        if not ok:
            raise cast(Exception, value)
        return value


@dataclass(frozen=True)
class Head:
    """What a clone of a repository needs to know of it, read by one git process."""

    commit: str
    tree: str
    objects: Path | None = None  # its object store (a linked worktree's is the main one's)
    object_format: str = ""  # sha1 | sha256 (only sha1 is written here; others go to `git clone`)
    branch: str = ""  # the branch HEAD is on, if any (refs/heads/...)
    shallow: Path | None = None  # its list of grafted commits, for a shallow repository


def start_git(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """`git args` started in `cwd` on the host with the isolated configuration (see gitcmd.git), to be
    collected with finish_git: for reads of the user's repository while other git work goes on."""
    return subprocess.Popen(
        [*_GIT, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=isolated_git_env(),
    )  # fmt: skip


def finish_git(proc: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    """A start_git process's exit status and output, once it has ended."""
    out, err = proc.communicate()
    return proc.returncode, out, err


def _said(ended: tuple[int, bytes, bytes], cwd: Path, verb: str) -> str:
    code, out, err = ended
    if code != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git {verb} failed in {cwd}: {msg[-1] if msg else code}")
    return out.decode(errors="replace")


def _clone_with_changes(
    repo: Path, dest: Path, head: Head, reads: RepoReads, alongside: Alongside | None = None
) -> bool:
    """`dest`: a shared clone of `repo` at `head` with its uncommitted changes and untracked files on
    top. Whether it is the commit's checkout as is (there were none)."""
    _clone(repo, dest, head, reads.ended("refs"), alongside)
    said = {verb: reads.said(verb) for verb in ("diff", "ls-files")}
    changes = said["diff"]
    pristine = not changes.strip()
    if changes.strip():
        git(dest, "apply", "--binary", "--whitespace=nowarn", "-", input=changes.encode())
    untracked = said["ls-files"].split("\0")
    run_dirs: dict[Path, bool] = {}
    for rel in filter(None, untracked):
        if _in_run_dir(repo, Path(rel), run_dirs):
            continue
        src, dst = repo / rel, dest / rel
        pristine = False
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    return pristine


def _clone(
    repo: Path, dest: Path, head: Head, listed: tuple[int, bytes, bytes], alongside: Alongside | None = None
) -> None:
    """`dest`: `repo` cloned as `git clone --shared` would, HEAD detached at `head.commit`. The git
    directory is written here (HEAD, config, the alternates naming the user's object store, the refs
    as a clone names them) and one git process checks the commit out: `git clone` takes two more
    processes (it runs upload-pack even for a local clone), most of a workspace's start. What this
    cannot write (a sha256 repository, a failed write) goes to `git clone` itself."""
    if head.objects is not None and head.object_format == "sha1" and listed[0] == 0:
        try:
            _write_gitdir(dest / ".git", repo, head, listed[1].decode(errors="replace"))
        except OSError:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            _checkout(dest, head.commit, alongside)
            return
    git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest))
    _checkout(dest, head.commit, alongside)


def _checkout(dest: Path, commit: str, alongside: Alongside | None) -> None:
    """`git checkout --detach commit` in the new clone `dest`, with `alongside` done while it runs."""
    proc = start_git(dest, "checkout", "-q", "--detach", commit)
    try:
        if alongside is not None:
            alongside.run(dest)
    finally:
        _said(finish_git(proc), dest, "checkout")


def _write_gitdir(gitdir: Path, repo: Path, head: Head, refs: str) -> None:
    """The git directory of a shared clone of `repo` (see _clone): remote `origin` is `repo`, its
    branches are `origin/...`, its tags are copied, HEAD's branch exists locally, HEAD is `head.commit`."""
    assert head.objects is not None
    # Only what git needs to see a repository, and what models write to: git makes refs/heads, refs/tags
    # and objects/pack when it first needs them (each directory costs as much as several files).
    for sub in ("objects/info", "refs", "info", "logs"):
        (gitdir / sub).mkdir(parents=True)
    # What git's template gives every clone and models write to (sample hooks are left out).
    (gitdir / "info" / "exclude").write_text("")
    (gitdir / "objects" / "info" / "alternates").write_text(f"{head.objects}\n")
    if head.shallow is not None:  # its grafts: without them a shallow history's last parents are missing
        shutil.copyfile(head.shallow, gitdir / "shallow")
    packed = []
    for line in refs.splitlines():
        oid, _, name = line.partition(" ")
        if not _HEX.fullmatch(oid) or not name.startswith(("refs/heads/", "refs/tags/")):
            continue
        branch = name.removeprefix("refs/heads/")
        packed.append(f"{oid} refs/remotes/origin/{branch}" if branch != name else line)
        if name == head.branch:
            packed.append(line)
    (gitdir / "packed-refs").write_text(
        "".join(f"{ref}\n" for ref in sorted(packed, key=lambda ref: ref.split(" ", 1)[1]))
    )
    config = ["[core]", "\trepositoryformatversion = 0"]
    config += ["\tfilemode = true", "\tbare = false", "\tlogallrefupdates = true"]
    config += [
        '[remote "origin"]',
        f"\turl = {_quoted(str(repo))}",
        "\tfetch = +refs/heads/*:refs/remotes/origin/*",
    ]
    local = head.branch.removeprefix("refs/heads/")
    if head.branch:
        config += [f"[branch {_quoted(local)}]", "\tremote = origin", f"\tmerge = {_quoted(head.branch)}"]
        (gitdir / "refs" / "remotes" / "origin").mkdir(parents=True)
        (gitdir / "refs" / "remotes" / "origin" / "HEAD").write_text(f"ref: refs/remotes/origin/{local}\n")
    (gitdir / "config").write_text("".join(f"{line}\n" for line in config))
    (gitdir / "HEAD").write_text(f"{head.commit}\n")
    # HEAD's reflog, as the clone and its checkout leave it: git describes a detached HEAD from it
    # ("HEAD detached at ..." after leaving a branch, "Not currently on any branch" otherwise).
    who, source = f"devloop <devloop@localhost> {int(time.time())} +0000", str(repo).replace("\n", " ")
    log = [f"{'0' * len(head.commit)} {head.commit} {who}\tclone: from {source}"]
    if head.branch:
        log.append(f"{head.commit} {head.commit} {who}\tcheckout: moving from {local} to {head.commit}")
    (gitdir / "logs" / "HEAD").write_text("".join(f"{line}\n" for line in log))


def make_holder(parent: Path | None, gitdir_name: str) -> Path:
    """A new directory (in `parent`, default the temp dir) to hold a workspace's tree and, as
    `gitdir_name`, devloop's private git dir (write_private_gitdir), marked as this process's."""
    from devloop.runtime.stale import mark_owner

    holder = Path(tempfile.mkdtemp(prefix="devloop-ws-", dir=parent))
    holder.chmod(0o711)  # the sandbox user must pass through to the workspace, not list its siblings
    mark_owner(holder)  # so that the next run removes it if this one is killed
    try:
        write_private_gitdir(holder / gitdir_name)
    except OSError as exc:
        raise WorkspaceError(f"cannot make devloop's git directory in {holder}: {exc.strerror}") from None
    return holder


def write_private_gitdir(gitdir: Path) -> None:
    """An empty bare repository at `gitdir`, as `git init --bare --template=` makes it but with only what
    git needs to see one (HEAD, config, objects/, refs/): git adds the rest when it first writes there.
    Written here rather than by git: on some disks each file git writes, locks and renames into place
    costs as much as a process, and this is on every run's start."""
    (gitdir / "objects" / "info").mkdir(parents=True)
    (gitdir / "refs").mkdir()
    (gitdir / "HEAD").write_text("ref: refs/heads/master\n")
    (gitdir / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
    )


@dataclass(frozen=True)
class GitSeed:
    """What a tree made by devloop itself is known to hold, for a workspace on it (in place): `objects`, a
    git object store with every object of the tree's files, and `index`, a git index of the tree as it
    was made. Both the host's, outside the tree and never written by a sandbox (the model's copy of them
    is in the tree's own `.git`). The private git dir borrows the store (read-only in the sandbox) and
    starts from the index, so the first snapshot hashes only the files that changed since."""

    objects: Path
    index: Path


def seed_private_gitdir(seed: GitSeed, gitdir: Path) -> list[Path]:
    """Give the private `gitdir` the seed's object store and index; the store, for the sandbox to show."""
    (gitdir / "objects" / "info" / "alternates").write_text(f"{seed.objects}\n")
    shutil.copyfile(seed.index, gitdir / "index")
    return [seed.objects]


def share_with_private_gitdir(clone_gitdir: Path, gitdir: Path) -> list[Path]:
    """Give the private `gitdir` the object stores a fresh clone borrows (read-only to the sandbox) and
    the clone's index, so that its first snapshot only hashes what changed; the stores, for the
    sandbox to show. Read before the model has run anything: the clone is still devloop's."""
    listed = clone_gitdir / "objects" / "info" / "alternates"
    shared = (
        [Path(line) for line in listed.read_text().splitlines() if line.strip()] if listed.is_file() else []
    )
    stores = [p for p in shared if p.is_dir()]
    (gitdir / "objects" / "info" / "alternates").write_text("".join(f"{p}\n" for p in stores))
    if (clone_gitdir / "index").is_file():
        shutil.copyfile(clone_gitdir / "index", gitdir / "index")
    return stores


def _quoted(value: str) -> str:
    """`value` as a git configuration value (or subsection name) in double quotes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


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
