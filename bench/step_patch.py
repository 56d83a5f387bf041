"""Per-step patch cost: the former git-every-step patch against today's (a stat scan, git only on change).

BEFORE is what Workspace.diff did on every step: `git add -A` then `git diff --cached <base>` in devloop's
private git dir, without the untracked cache (on an index of its own, so the two never share one). AFTER is Workspace.diff now: the tree's inotify watch says
whether anything changed since the last scan (workspace/watch.py); only when it did, a stat scan of the tree,
and git (stage, write-tree, diff in one process, untracked cache on) only when the scan differs from the one
taken before the last git run. SCAN is AFTER with the watch ignored: the stat scan on every step. Both run unsandboxed on the host (as with --sandbox none; in a sandbox
every git run also pays a sandbox start, which AFTER spares on unchanged steps).

Three trees: the demo repository, and generated repositories of 6,000 and 30,000 committed files. Per
tree, rounds alternate BEFORE and AFTER on the same workspace for two kinds of step: one that changed
nothing (a read), and one whose command rewrote a file. Each step waits out the file-time granularity
first, as a model's reply would. Printed: median ms per step, AFTER / BEFORE and AFTER / SCAN with their spreads.

STAGING is AFTER without its one-process diff (Workspace.diff_unstaged off): a step whose scan differs
stages everything and diffs the index (two git processes under one `sh`), where AFTER, when the tree's
shape (its paths, their modes, the ignore files) is the one the index was staged with, diffs the work
tree against the base in one git process. Printed for the edit step: AFTER / STAGING.

    python bench/step_patch.py [--rounds 15] [--sizes 6000 30000]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from devloop.demo import make_demo_repo
from devloop.workspace import _ADD, _EXCLUDES, _GIT, _GRANULARITY_NS, Workspace, isolated_git_env

_OLD = [*_GIT, "-c", "core.trustctime=false", "-c", "core.untrackedCache=false"]


def before(ws: Workspace) -> str:
    """The per-step patch as it was computed on every step: stage everything, diff the index."""
    diff = [*_OLD, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv"]
    diff += ["--ignore-submodules=all", ws.base, "--", ".", *_EXCLUDES]
    script = f"{shlex.join([*_OLD, *_ADD])} >/dev/null 2>&1; exec {shlex.join(diff)}"
    env = {**isolated_git_env(), "GIT_DIR": str(ws.gitdir), "GIT_WORK_TREE": str(ws.root)}
    env["GIT_INDEX_FILE"] = str(ws.gitdir / "index.before")  # its own index: no untracked cache there
    return subprocess.run(
        ["sh", "-c", script], cwd=ws.root, env=env, capture_output=True, check=True
    ).stdout.decode()


def staging(ws: Workspace) -> str:
    """Workspace.diff staging on every change (as it did before its one-process diff)."""
    ws.diff_unstaged = False
    try:
        return ws.diff()
    finally:
        ws.diff_unstaged = True


def scanning(ws: Workspace) -> str:
    """Workspace.diff with the tree's inotify watch ignored: the stat scan on every step (as before the
    watch vouched for quiet steps)."""
    # Its own verdict on the tree's size: without a watch a tree past SCAN_LIMIT is left to git for good,
    # which must not carry over to AFTER's calls on the same workspace (nor AFTER's to these).
    scans = ws.scans
    watched_large, scans.large = scans.large, scans.__dict__.get("unwatched_large", False)
    scans.watch_changes = False
    try:
        return ws.diff()
    finally:
        scans.watch_changes = True
        scans.__dict__["unwatched_large"], scans.large = scans.large, watched_large


def big_repo(dest: Path, files: int) -> Path:
    """A committed repository of `files` small Python files, 50 per directory, 20 directories per package."""
    dest.mkdir(parents=True)
    for i in range(files):
        folder = dest / f"pkg{i // 1000}" / f"sub{(i // 50) % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.py").write_text(f"x = {i}\n" * 20)
    env = {**isolated_git_env(), "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@l"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@l"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"]):
        subprocess.run(["git", *args], cwd=dest, env=env, check=True, capture_output=True)
    return dest


def timed(fn: object, ws: Workspace) -> float:
    time.sleep(_GRANULARITY_NS / 1e9 + 0.002)  # the model's reply: the last write has settled
    t0 = time.perf_counter()
    fn(ws)  # type: ignore[operator]
    return time.perf_counter() - t0


def measure(repo: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    ws = Workspace.create(repo)
    target = next(p for p in sorted(ws.root.rglob("*.py")) if ".git" not in p.parts)
    sides = [("before", before), ("staging", staging), ("scan", scanning), ("after", Workspace.diff)]
    times = {k: {side: [] for side, _ in sides} for k in ("unchanged", "edit")}
    try:
        ws.diff()
        before(ws)  # warm both
        for r in range(rounds):
            for side, fn in sides[r % len(sides) :] + sides[: r % len(sides)]:
                times["unchanged"][side].append(timed(fn, ws))
                target.write_text(target.read_text() + f"# {side} {r}\n")
                times["edit"][side].append(timed(fn, ws))
                assert f"+# {side} {r}" in ws.diff(), "the edit is missing from the patch"
    finally:
        ws.cleanup()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sizes", type=int, nargs="*", default=[6000, 30000])
    args = ap.parse_args()
    print("per-step patch, unsandboxed on the host; median ms per step, AFTER / BEFORE (spread)")
    with tempfile.TemporaryDirectory(prefix="devloop-bench-patch-") as tmp:
        trees = [("demo repo", make_demo_repo(Path(tmp) / "demo"))]
        trees += [(f"{n:,} files", big_repo(Path(tmp) / f"big{n}", n)) for n in args.sizes]
        for name, repo in trees:
            times = measure(repo, args.rounds)
            for kind, sides in times.items():
                b, a, st, sc = sides["before"], sides["after"], sides["staging"], sides["scan"]
                ratios = [x / y for x, y in zip(a, b, strict=True)]
                by_scan = [x / y for x, y in zip(a, sc, strict=True)]
                line = (
                    f"  {name:<13} {kind:<9} before {statistics.median(b) * 1e3:7.2f} ms  "
                    f"after {statistics.median(a) * 1e3:7.2f} ms  {statistics.median(ratios):5.2f}x "
                    f"({min(ratios):.2f}-{max(ratios):.2f}); scan every step {statistics.median(sc) * 1e3:7.2f} ms, "
                    f"after / scan {statistics.median(by_scan):5.2f}x ({min(by_scan):.2f}-{max(by_scan):.2f})"
                )
                if kind == "edit":
                    vs = [x / y for x, y in zip(a, st, strict=True)]
                    line += (
                        f"; staging {statistics.median(st) * 1e3:7.2f} ms, after / staging "
                        f"{statistics.median(vs):5.2f}x ({min(vs):.2f}-{max(vs):.2f})"
                    )
                print(line)


if __name__ == "__main__":
    main()
