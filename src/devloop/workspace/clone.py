"""The starting state of a workspace: a shared clone of a git repository with the user's uncommitted
changes replayed on top, or a copy of a plain directory (what it leaves out)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devloop.workspace.gitcmd import _GIT, _HEX, WorkspaceError, git, isolated_git_env


def make_tree(repo: Path, holder: Path, in_place: bool) -> tuple[Path, str, str | None]:
    """The workspace's tree in `holder`, its kind (see Workspace) and, when it is a clone's checkout of
    HEAD with nothing on top, HEAD's tree id (else None): `repo` itself, a shared clone of it with its
    uncommitted changes, or a copy of a plain directory (with a fresh `git init`)."""
    if in_place:
        if not (repo / ".git").exists():
            git(repo, "init", "-q")
        return repo, "in_place", None
    dest = holder / repo.name
    head = head_commit(repo)
    if head is not None:
        commit, tree = head
        return dest, "clone", tree if _clone_with_changes(repo, dest, commit) else None
    shutil.copytree(repo, dest, symlinks=True, ignore=_not_copied)
    git(dest, "init", "-q")
    return dest, "copy", None


def head_commit(repo: Path) -> tuple[str, str] | None:
    """HEAD's commit and tree ids if `repo` is the top of a git repository, ("", "") for one without
    commits, None when it is not one (one git process for all three answers)."""
    head = subprocess.run(
        [*_GIT, "rev-parse", "--show-toplevel", "HEAD^{commit}", "HEAD^{tree}", "--"], cwd=repo,
        capture_output=True, check=False, env=isolated_git_env(),
    )  # fmt: skip
    lines = head.stdout.decode(errors="replace").splitlines()
    if not lines or Path(lines[0]).resolve() != repo.resolve():
        return None
    if head.returncode == 0 and len(lines) >= 3 and all(_HEX.fullmatch(x) for x in lines[1:3]):
        return lines[1], lines[2]
    if head.returncode != 0 and lines[1:2] == ["HEAD^{commit}"]:  # echoed back: HEAD has no commit yet
        return "", ""
    return None


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


def _clone_with_changes(repo: Path, dest: Path, commit: str) -> bool:
    """`dest`: a shared clone of `repo` at `commit` ("" for a repository without commits) with its
    uncommitted changes and untracked files on top. Whether it is the commit's checkout as is (there
    were none)."""
    # The user's changes are read while the clone is made (both only read the user's repository);
    # every process started here has ended before this returns, whatever fails.
    diff = ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"]
    reads = {"diff": start_git(repo, *diff)} if commit else {}
    reads["ls-files"] = start_git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    try:
        if commit:
            git(repo.parent, "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest))
            git(dest, "checkout", "-q", "--detach", commit)
        else:  # a repository without commits: everything is uncommitted
            dest.mkdir(parents=True)
            git(dest, "init", "-q")
    finally:
        ended = {verb: finish_git(proc) for verb, proc in reads.items()}
    said = {verb: _said(result, repo, verb) for verb, result in ended.items()}
    changes = said.get("diff", "")
    pristine = bool(commit) and not changes.strip()
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
