"""Feedback-loop latency and related-test selection speed-up, in one run.

1. Overhead, whole: from an edit's completion to the end of the hook's step (the step's diff, test
   selection, the summary, and on an edit that improves the score the checkpoint: `git add -A`,
   write-tree, commit-tree, update-ref), minus the test process's own time. Measured over --edits edits
   that alternately break and fix a passing test; the figure is also split into its parts (the diff, the
   hook up to the summary, the rest: checkpoint and events). Target: < 50 ms.
2. Speed-up: on a generated task with a large suite (--modules x --tests), one module is broken; the related
   tests (selection included) against the whole suite, each run through the same runner. The verdict (which
   tests fail) must be the same. Target: >= 5x.

Both use the real persistent shell and pytest. Pytest plugin autoload is turned off (as in the tests), so the
figures measure pytest and devloop rather than whichever plugins this machine has installed.

    python bench/feedback_latency.py [--edits 10] [--modules 40] [--tests 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from devloop.agent import StepInfo
from devloop.feedback.loop import build_feedback
from devloop.feedback.runners import PytestRunner
from devloop.feedback.selection import TestSelector
from devloop.feedback.settings import FeedbackSettings
from devloop.runtime import LocalRuntime
from devloop.types import Usage
from devloop.workspace import Workspace

ENV = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def _git_init(repo: Path) -> None:
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "s"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_project(root: Path, modules: int, tests: int) -> Path:
    """A package of `modules` modules, each with a test file of `tests` tests importing only it."""
    repo = root / "bigsuite"
    (repo / "big").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "big" / "__init__.py").write_text("")
    for m in range(modules):
        funcs = "".join(f"def f{t}(x):\n    return x + {t}\n\n\n" for t in range(tests))
        (repo / "big" / f"mod{m}.py").write_text(funcs)
        cases = "".join(f"def test_f{t}():\n    assert mod.f{t}(1) == {t + 1}\n\n\n" for t in range(tests))
        (repo / "tests" / f"test_mod{m}.py").write_text(f"from big import mod{m} as mod\n\n\n{cases}")
    _git_init(repo)
    return repo


def overhead(root: Path, edits: int) -> list[dict[str, float]]:
    repo = make_project(root / "small", modules=3, tests=5)
    ws = Workspace.create(repo, parent=root)
    runtime = LocalRuntime(ws.root, env=ENV)
    loop = build_feedback(
        FeedbackSettings(hook="pytest", rollback_threshold=1000),
        workspace=ws,
        runtime=runtime,
        out_dir=root / "out",
    )
    assert loop is not None
    target = ws.root / "big" / "mod1.py"
    original = target.read_text()
    samples = []
    last = ""
    try:
        for i in range(edits):
            target.write_text(
                original.replace("return x + 2\n", "return x - 2\n") if i % 2 == 0 else original
            )
            before = loop.hook.checkpoints.last
            t0 = time.monotonic()
            patch = ws.diff()
            t1 = time.monotonic()
            info = StepInfo(i + 1, [], [], Usage(), 0.0, None, patch, patch != last)
            last = patch
            action = loop.hook.after_step(info)
            t2 = time.monotonic()
            assert action is not None and "[test hook]" in action.text
            assert loop.hook.last_report is not None
            tests = loop.hook.last_report.duration_s
            summary = loop.hook.overheads[-1]
            samples.append(
                {
                    "whole": (t2 - t0) - tests,
                    "diff": t1 - t0,
                    "summary": summary,
                    "rest": (t2 - t1) - tests - summary,
                    "checkpoint": float(loop.hook.checkpoints.last is not before),
                }
            )
    finally:
        loop.close()
        runtime.close()
    return samples


def speedup(root: Path, modules: int, tests: int) -> dict[str, float | int | bool]:
    repo = make_project(root / "large", modules, tests)
    target = repo / "big" / "mod7.py"
    target.write_text(target.read_text().replace("return x + 3\n", "return x * 3\n"))
    patch = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout
    with LocalRuntime(repo, env=ENV) as runtime:
        runner = PytestRunner(runtime, repo)
        t0 = time.monotonic()
        selected = TestSelector(repo).select(patch)
        related = runner.run(selected, 600)
        t_related = time.monotonic() - t0
        t0 = time.monotonic()
        full = runner.run(None, 600)
        t_full = time.monotonic() - t0
    failing = lambda r: sorted(t for t, s in r.statuses.items() if s in ("FAILED", "ERROR"))  # noqa: E731
    return {
        "suite_tests": len(full.statuses),
        "related_tests": len(related.statuses),
        "related_s": t_related,
        "full_s": t_full,
        "speedup": t_full / t_related,
        "same_verdict": failing(related) == failing(full) and related.green == full.green,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--modules", type=int, default=40)
    ap.add_argument("--tests", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="devloop-bench-") as tmp:
        samples = overhead(Path(tmp), args.edits)
        whole = [1000 * s["whole"] for s in samples]
        print(
            f"overhead, whole (edit done -> hook step done, checkpoint included, minus the test process), "
            f"{len(whole)} edits: median {statistics.median(whole):.1f} ms, max {max(whole):.1f} ms "
            f"[target < 50 ms: {'PASS' if max(whole) < 50 else 'FAIL'}]"
        )
        for kind, picked in (
            ("with a checkpoint", [s for s in samples if s["checkpoint"]]),
            ("without", [s for s in samples if not s["checkpoint"]]),
        ):
            if picked:
                parts = ", ".join(
                    f"{part} {statistics.median(1000 * s[part] for s in picked):.1f}"
                    for part in ("whole", "diff", "summary", "rest")
                )
                print(f"  {len(picked)} edits {kind}: median ms: {parts}")
        result = speedup(Path(tmp), args.modules, args.tests)
        print(
            f"related tests: {result['related_tests']} of {result['suite_tests']} in {result['related_s']:.2f} s; "
            f"full suite {result['full_s']:.2f} s; speed-up {result['speedup']:.1f}x, "
            f"same verdict: {result['same_verdict']} "
            f"[target >= 5x: {'PASS' if result['speedup'] >= 5 and result['same_verdict'] else 'FAIL'}]"
        )


if __name__ == "__main__":
    main()
