"""Best-of-N selection: pick one of N candidate patches using only what the agent could see.

The rule, in order (lower is better on each key, the first difference decides):

1. the candidate is not empty and applies to the tree at base;
2. regressions: tests of the repository's own suite (`environment.test_cmd` run on the tree at base, the
   task's test_patch NOT applied) that pass (PASSED/XFAIL) without the candidate and do not pass
   (FAILED, ERROR or absent) with it;
3. own tests failed: tests that exist only with the candidate (tests the agent wrote or revealed) and
   fail or error;
4. votes (more is better): how many candidates share this candidate's normalised patch (see
   `normalise_patch`);
5. the lowest sample index.

The hidden FAIL_TO_PASS / PASS_TO_PASS lists and the test_patch are never read here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devloop.eval.checkout import build_cache, check_out
from devloop.eval.envs import EnvError, EnvironmentManager
from devloop.eval.records import Selection
from devloop.eval.taskbox import TaskBox
from devloop.eval.verdict import parse_test_log
from devloop.parse.diffs import parse_diff
from devloop.parse.log_parsers import TestStatus
from devloop.runtime.limits import Limits
from devloop.runtime.stale import mark_owner
from devloop.tasks.model import Task

RULE = (
    "applies > fewest regressions of the visible suite > fewest failing own tests > most votes > lowest index"
)

_PASS = (TestStatus.PASSED, TestStatus.XFAIL)
_NEUTRAL = (*_PASS, TestStatus.SKIPPED)
_TEST_FILE = re.compile(r"(^|/)(tests?|testing)/|(^|/)(test_[^/]*|[^/]*_test\.py|conftest\.py)$")


def is_test_path(path: str) -> bool:
    """Whether a path looks like a test file (tests/ dir, test_*.py, *_test.py, conftest.py)."""
    return bool(_TEST_FILE.search(path))


def _norm_line(line: str) -> str:
    # Whitespace differences vanish; a whole-line comment carries no behaviour.
    text = " ".join(line.split())
    return "" if text.startswith("#") else text


def normalise_patch(patch: str) -> str:
    """A fingerprint of a patch's source change, equal for patches that differ only in form.

    Test files are left out (the vote is over the fix); within each file, only changed lines count
    (context is dropped), each with whitespace collapsed; blank lines and whole-line `#` comments are
    dropped; a change block that is then the same on both sides (whitespace-only) is dropped; blocks are
    sorted within a file and files by path. Returns "" for a patch with no such change.
    """
    signature: list[tuple[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]] = []
    for f in parse_diff(patch):
        if is_test_path(f.path):
            continue
        blocks = []
        for hunk in f.hunks:
            old = [n for line in hunk.old_lines if (n := _norm_line(line))]
            new = [n for line in hunk.new_lines if (n := _norm_line(line))]
            matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal":
                    blocks.append((tuple(old[i1:i2]), tuple(new[j1:j2])))
        if blocks or not f.hunks:  # a file created empty, deleted or renamed still counts
            signature.append((f"{f.old_path}->{f.new_path}", sorted(blocks)))
    if not signature:
        return ""
    blob = json.dumps(sorted(signature), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class VisibleRun:
    """The statuses of the visible suite on the tree at base, with or without a candidate applied."""

    applied: bool
    statuses: dict[str, str]


def run_visible_tests(task: Task, patch: str | None, *, manager: EnvironmentManager, mirrors: Path | None,
                      workdir: Path, timeout: float, log: Path, sandbox: str = "auto",
                      limits: Limits | None = None, builds: bool = True) -> VisibleRun:  # fmt: skip
    """Run the repository's own tests (test_cmd, no test_patch) on the tree at base plus `patch`, in
    `sandbox` as grading does (a candidate's tests are the model's code)."""
    spec = task.environment
    if spec is None:
        raise EnvError("the record has no environment to run its visible tests in")
    with TaskBox(workdir, sandbox=sandbox, limits=limits) as box:
        check_out(
            task,
            box,
            manager,
            mirrors,
            timeout=timeout,
            install_log=log,
            where=" on the tree at base",
            builds=build_cache(manager, builds),
        )
        if patch is not None and not box.apply(patch).applied:
            return VisibleRun(False, {})
        box.run(spec.test_cmd, timeout=timeout, log=log)
    return VisibleRun(
        True, parse_test_log(log.read_text(encoding="utf-8", errors="replace"), spec.log_parser)
    )


def score(base: dict[str, str], run: VisibleRun) -> dict[str, int]:
    """Regressions against the base statuses, and the candidate's own (new) tests passed / failed."""
    if not run.applied:
        return {"applied": 0, "regressions": 0, "own_tests_failed": 0, "own_tests_passed": 0}
    regressions = sum(1 for t, s in base.items() if s in _PASS and run.statuses.get(t) not in _NEUTRAL)
    new = {t: s for t, s in run.statuses.items() if t not in base}
    return {
        "applied": 1,
        "regressions": regressions,
        "own_tests_failed": sum(1 for s in new.values() if s in (TestStatus.FAILED, TestStatus.ERROR)),
        "own_tests_passed": sum(1 for s in new.values() if s in _PASS),
    }


def choose(candidates: Sequence[dict[str, object]]) -> int:
    """The index of the best candidate under the module's rule; each candidate needs the keys `index`,
    `applied`, `regressions`, `own_tests_failed`, `votes`."""

    def n(c: dict[str, object], name: str) -> int:
        value = c[name]
        if not isinstance(value, int):
            raise TypeError(f"candidate {name} must be a whole number, got {value!r}")
        return value

    def key(c: dict[str, object]) -> tuple[int, int, int, int, int]:
        return (
            -n(c, "applied"),
            n(c, "regressions"),
            n(c, "own_tests_failed"),
            -n(c, "votes"),
            n(c, "index"),
        )

    return n(min(candidates, key=key), "index")


def select(task: Task, patches: dict[int, str], *, manager: EnvironmentManager, mirrors: Path | None,
           test_timeout: float, log_dir: Path, keep_workdirs: bool = False, sandbox: str = "auto",
           limits: Limits | None = None, builds: bool = True) -> Selection:  # fmt: skip
    """Run the visible suite at base and with each non-empty candidate (in `sandbox`, with `limits`, the
    install through the build cache unless `builds` is False); choose by the module's rule."""
    log_dir.mkdir(parents=True, exist_ok=True)
    fingerprints = {i: normalise_patch(p) for i, p in patches.items() if p.strip()}
    votes = Counter(fingerprints.values())
    if not fingerprints:
        return Selection(instance_id=task.instance_id, chosen=min(patches), rule="every candidate is empty")
    workdir = Path(tempfile.mkdtemp(prefix=f"devloop-select-{task.instance_id[:40]}-"))
    if not keep_workdirs:  # removed by the next run if this one is killed; a kept one never is
        mark_owner(workdir)
    try:
        base = run_visible_tests(task, None, manager=manager, mirrors=mirrors, workdir=workdir / "base",
                                 timeout=test_timeout, log=log_dir / "visible_base.log", sandbox=sandbox,
                                 limits=limits, builds=builds).statuses  # fmt: skip
        rows: list[dict[str, object]] = []
        for index, fp in sorted(fingerprints.items()):
            run = run_visible_tests(task, patches[index], manager=manager, mirrors=mirrors,
                                    workdir=workdir / str(index), timeout=test_timeout,
                                    log=log_dir / f"visible_{index}.log", sandbox=sandbox, limits=limits,
                                    builds=builds)  # fmt: skip
            rows.append({"index": index, **score(base, run), "votes": votes[fp], "fingerprint": fp})
    finally:
        if not keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
    return Selection(instance_id=task.instance_id, chosen=choose(rows), candidates=rows, rule=RULE)


def vote_only(task: Task, patches: dict[int, str], why: str) -> Selection:
    """The choice by votes alone (every candidate taken as applying, without regressions), when the visible
    tests could not run; `why` says why, in the selection's rule."""
    fingerprints = {i: normalise_patch(p) for i, p in patches.items() if p.strip()}
    votes = Counter(fingerprints.values())
    rows: list[dict[str, object]] = [
        {
            "index": i,
            "applied": 1,
            "regressions": 0,
            "own_tests_failed": 0,
            "votes": votes[fp],
            "fingerprint": fp,
        }
        for i, fp in fingerprints.items()
    ]
    chosen = choose(rows) if rows else min(patches)
    return Selection(instance_id=task.instance_id, chosen=chosen, candidates=rows, rule=f"vote only ({why})")
