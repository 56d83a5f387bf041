"""Minimal patch: shrink a passing run's diff by delta debugging, keeping what the tests observe unchanged.

ddmin (Zeller & Hildebrandt) runs first over hunks, then over the single changed lines of the hunks left. A
candidate is kept only when every test reports the same status as with the whole patch; "the same set of passing
tests", not merely "green". Candidates are applied with `git apply` to a scratch copy of the starting tree, so the
workspace is not touched until a result is chosen; the chosen patch is then put into the workspace and the tests
re-run there, and if they observe anything different the original patch is put back and returned.

When the tests behave differently in the scratch copy (they depend on ignored build outputs, or the runner cannot
be pointed elsewhere), candidates are tried in the workspace itself, which always ends holding the result.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devloop.feedback.base import TestReport, TestRunner
from devloop.feedback.candidates import CandidateTree
from devloop.workspace import Workspace, WorkspaceError, git


@dataclass
class MinimizeResult:
    """The chosen patch and what it cost. Sizes are changed lines ('+' and '-' lines)."""

    patch: str
    size_before: int
    size_after: int
    test_runs: int
    hunks_before: int = 0
    hunks_after: int = 0
    verified: bool = False  # the result was re-run in the workspace and observed the same
    mode: str = "scratch"  # "scratch" | "in_place" | "skipped"
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "patch"}


# --- the diff as units ---------------------------------------------------------------------------------------


@dataclass
class _Hunk:
    old_start: int
    lines: list[str]  # body lines, each with its tag, "\ No newline" markers included
    ids: list[int] = field(default_factory=list)  # change id per line (-1: context or marker)


@dataclass
class _File:
    header: list[str]
    hunks: list[_Hunk]
    atomic: bool  # deletions and sections without hunks are kept or dropped whole
    own_id: int = -1  # the unit id of a section without hunks


class SplitPatch:
    """A git diff split into files, hunks and changed lines, each changed line with a numeric id."""

    def __init__(self, patch: str) -> None:
        self.files: list[_File] = []
        self.n_ids = 0
        sections = [s for s in _split_sections(patch) if s.strip()]
        for section in sections:
            lines = section.splitlines(keepends=True)
            first = next((i for i, ln in enumerate(lines) if ln.startswith("@@")), len(lines))
            header = lines[:first]
            atomic = any(ln.startswith(("+++ /dev/null", "Binary files", "GIT binary patch")) for ln in lines)
            f = _File(header, [], atomic)
            for raw in _split_hunks(lines[first:]):
                old_start = int(raw[0].split()[1].lstrip("-").split(",")[0])
                hunk = _Hunk(old_start, raw[1:])
                for ln in hunk.lines:
                    if ln[:1] in "+-":
                        hunk.ids.append(self.n_ids)
                        self.n_ids += 1
                    else:
                        hunk.ids.append(-1)
                f.hunks.append(hunk)
            if not f.hunks:
                f.own_id = self.n_ids
                self.n_ids += 1
            self.files.append(f)

    def hunk_units(self) -> list[frozenset[int]]:
        """One unit per hunk (a whole file for atomic sections)."""
        units: list[frozenset[int]] = []
        for f in self.files:
            if f.own_id >= 0:
                units.append(frozenset([f.own_id]))
            elif f.atomic:
                units.append(frozenset(i for h in f.hunks for i in h.ids if i >= 0))
            else:
                units += [frozenset(i for i in h.ids if i >= 0) for h in f.hunks]
        return units

    def line_units(self, kept: frozenset[int]) -> list[frozenset[int]]:
        """One unit per kept changed line of splittable files; atomic sections stay one unit."""
        units: list[frozenset[int]] = []
        for f in self.files:
            ids = [i for h in f.hunks for i in h.ids if i in kept] + ([f.own_id] if f.own_id in kept else [])
            if not ids:
                continue
            units += [frozenset(ids)] if f.atomic or f.own_id >= 0 else [frozenset([i]) for i in ids]
        return units

    def render(self, kept: frozenset[int]) -> str:
        """The patch holding only the changed lines in `kept` (dropped '-' lines become context)."""
        out: list[str] = []
        for f in self.files:
            if f.own_id >= 0:
                if f.own_id in kept:
                    out += f.header
                continue
            body: list[str] = []
            offset = 0
            for h in f.hunks:
                if not any(i in kept for i in h.ids if i >= 0):
                    continue
                lines, old, new = _filter(h, kept)
                new_start = h.old_start + offset + (1 if old == 0 else 0) - (1 if new == 0 else 0)
                body.append(f"@@ -{h.old_start},{old} +{max(new_start, 0)},{new} @@\n")
                body += lines
                offset += new - old
            if body:
                out += [ln for ln in f.header if not ln.startswith("index ")] + body
        return "".join(out)

    @staticmethod
    def size(patch: str) -> int:
        return sum(1 for ln in patch.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++ ", "--- ")))


def _split_sections(patch: str) -> list[str]:
    parts: list[str] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git ") or not parts:
            parts.append("")
        parts[-1] += line
    return parts


def _split_hunks(lines: list[str]) -> list[list[str]]:
    hunks: list[list[str]] = []
    for line in lines:
        if line.startswith("@@"):
            hunks.append([line])
        elif hunks:
            hunks[-1].append(line)
    return hunks


def _filter(h: _Hunk, kept: frozenset[int]) -> tuple[list[str], int, int]:
    out: list[str] = []
    old = new = 0
    dropped = False
    for line, i in zip(h.lines, h.ids, strict=True):
        tag = line[:1]
        if tag == "\\":
            if not dropped:
                out.append(line)
            continue
        dropped = False
        if tag == "+" and i not in kept:
            dropped = True
            continue
        if tag == "-" and i not in kept:
            line = " " + line[1:]
            tag = " "
        out.append(line)
        old += tag in " -"
        new += tag in " +"
    return out, old, new


# --- delta debugging -------------------------------------------------------------------------------------------


def ddmin(
    units: Sequence[frozenset[int]], good: Callable[[list[frozenset[int]]], bool]
) -> list[frozenset[int]]:
    """A 1-minimal sublist of `units` for which `good` holds (`good(units)` is assumed)."""
    current = list(units)
    n = 2
    while len(current) >= 2:
        size = len(current)
        chunks = [current[i * size // n : (i + 1) * size // n] for i in range(n)]
        for chunk in chunks:
            if good(chunk):
                current, n = chunk, 2
                break
        else:
            for k in range(n if n > 2 else 0):  # with two chunks the complements are the chunks again
                rest = [u for j, c in enumerate(chunks) if j != k for u in c]
                if good(rest):
                    current, n = rest, max(n - 1, 2)
                    break
            else:
                if n >= size:
                    break
                n = min(size, 2 * n)
    return current


# --- applying candidates and running tests ---------------------------------------------------------------------


def relocate(runner: TestRunner, root: Path) -> TestRunner | None:
    """The same runner working in `root`: its `at(root)` if it has one, else a copy with `root` replaced."""
    at = getattr(runner, "at", None)
    if callable(at):
        return at(root)  # type: ignore[no-any-return]
    if hasattr(runner, "root"):
        moved = copy.copy(runner)
        moved.root = Path(root)  # type: ignore[attr-defined]
        return moved
    return None


def _scratch_copy(
    workspace_root: Path, patch: str, parent: Path | None, workspace: Workspace | None = None
) -> Path | None:
    """A copy of the workspace's tracked and untracked (not ignored) files, the patch taken out again.

    With a workspace the copy is made inside it (`.devloop/minimize/`, where the runtime can run tests
    and which no patch includes), by git in the runtime; without one, in a temp dir under `parent`."""
    if workspace is not None:
        try:
            dest = workspace.export("minimize")
        except WorkspaceError:
            return None
        if patch and not CandidateTree(dest, None, "", workspace)._apply(patch, reverse=True):  # type: ignore[arg-type]
            return None
        return dest
    dest = Path(tempfile.mkdtemp(prefix="devloop-minimize-", dir=parent)) / workspace_root.name
    listed = git(workspace_root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in dict.fromkeys(filter(None, listed.split("\0"))):
        src, dst = workspace_root / rel, dest / rel
        if src.is_file() or src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
    dest.mkdir(parents=True, exist_ok=True)
    git(dest, "init", "-q")  # so git apply works on paths relative to this directory
    if patch and not CandidateTree(dest, None, "")._apply(patch, reverse=True):  # type: ignore[arg-type]
        shutil.rmtree(dest.parent, ignore_errors=True)
        return None
    return dest


def _remove_in(workspace: Workspace, path: Path) -> None:
    """Remove `path` (inside the workspace) where the model's commands run: it may hold its links."""
    executor = workspace._executor
    if executor is None:
        shutil.rmtree(path, ignore_errors=True)
    else:
        executor.exec(["rm", "-rf", "--", str(path)], cwd=workspace.root, root_writable=True)


def _same(report: TestReport, reference: TestReport) -> bool:
    return not report.timed_out and report.statuses == reference.statuses


def minimize(
    workspace_root: Path,
    patch: str,
    runner: TestRunner,
    tests: list[str] | None,
    *,
    timeout: float = 60.0,
    max_test_runs: int = 200,
    scratch_parent: Path | None = None,
    current_diff: Callable[[], str] | None = None,
    workspace: Workspace | None = None,
) -> MinimizeResult:
    """Shrink `patch` (the workspace's current diff against its starting state) while `tests` (None: the
    whole suite) report exactly the statuses they report with the whole patch. See the module doc.

    `current_diff` (e.g. `Workspace.diff`) re-reads the chosen patch from the workspace, so the result is in
    exactly the form the run's patch.diff has (candidate patches carry no `index` lines). `workspace` runs
    every git command in the workspace's runtime (the sandbox); without it, git runs here."""
    workspace_root = Path(workspace_root)
    split = SplitPatch(patch)
    size = SplitPatch.size(patch)
    result = MinimizeResult(
        patch, size, size, 0, len(split.hunk_units()), len(split.hunk_units()), mode="skipped"
    )
    runs = 0

    def run(r: TestRunner) -> TestReport:
        nonlocal runs
        runs += 1
        return r.run(tests, timeout)

    def done(note: str) -> MinimizeResult:
        result.test_runs, result.note = runs, note
        return result

    if not patch.strip():
        return done("empty patch: nothing to minimize")
    reference = run(runner)
    if not reference.green:
        return done("the tests do not pass with the patch: nothing to minimize against")
    scratch = None
    tree = CandidateTree(workspace_root, runner, patch, workspace)
    mode = "in_place"
    try:
        scratch = _scratch_copy(workspace_root, patch, scratch_parent, workspace)
        moved = relocate(runner, scratch) if scratch is not None else None
        if scratch is not None and moved is not None:
            trial = CandidateTree(scratch, moved, "", workspace)
            if trial.switch(patch) and _same(run(moved), reference):
                tree, mode = trial, "scratch"
        result.mode = mode
        cache: dict[frozenset[int], bool] = {frozenset(range(split.n_ids)): True}

        def good(units: list[frozenset[int]]) -> bool:
            kept = frozenset().union(*units) if units else frozenset()
            if kept not in cache:
                if runs >= max_test_runs:
                    return False
                cache[kept] = tree.switch(split.render(kept)) and _same(run(tree.runner), reference)
            return cache[kept]

        if good([]):
            tree.switch(patch)
            return done("the tests observe the same without the patch: kept it whole")
        hunks = ddmin(split.hunk_units(), good)
        kept = frozenset().union(*hunks)
        lines = ddmin(split.line_units(kept), good)
        kept = frozenset().union(*lines)
        chosen = split.render(kept)
        if mode == "scratch":
            tree = CandidateTree(workspace_root, runner, patch, workspace)
        if chosen == patch or not tree.switch(chosen):
            tree.switch(patch)
            return done("no smaller patch keeps the tests' observations")
        if not _same(run(runner), reference):
            tree.switch(patch)
            return done(
                "the smaller patch observed differently when re-run in the workspace: kept the original"
            )
        if current_diff is not None:
            chosen = current_diff()
            tree.applied = chosen
        result.patch, result.size_after, result.verified = chosen, SplitPatch.size(chosen), True
        result.hunks_after = len(SplitPatch(chosen).hunk_units())
        note = "" if runs < max_test_runs else f"stopped at --max-test-runs {max_test_runs}"
        return done(note)
    finally:
        if tree.root == workspace_root and tree.applied != result.patch:
            tree.switch(result.patch)  # an error mid-way: the workspace gets back what the result says
        if scratch is not None and workspace is not None:
            _remove_in(workspace, scratch)
        elif scratch is not None:
            shutil.rmtree(scratch.parent, ignore_errors=True)
