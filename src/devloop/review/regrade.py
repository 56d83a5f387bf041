"""Re-grading a reviewer's corrected patch through the eval grading path, inside the sandbox.

The patch is untrusted text (a model wrote most of it): it is applied and tested only by
`devloop.eval.grading.grade`, whose every command runs in the grading sandbox the run was graded in.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from devloop.eval.checkout import env_manager
from devloop.eval.grading import DEFAULT_TEST_TIMEOUT, grade
from devloop.eval.rundata import RunData
from devloop.eval.verdict import Category, Verdict


def regrade(run: RunData, instance_id: str, patch: str, cache_dir: Path | None = None) -> Verdict:
    """The verdict of `patch` on the run's task `instance_id`; never raises (a problem is the verdict)."""
    task = next((t for t in run.tasks() if t.instance_id == instance_id), None)
    if task is None:
        return Verdict(instance_id=instance_id, category=Category.ERROR,
                       message=f"{run.root}: no task record for {instance_id} in tasks.jsonl; cannot re-grade")  # fmt: skip
    meta = run.store.read_run_meta()
    mirrors = Path(meta["mirrors"]) if isinstance(meta.get("mirrors"), str) else None
    sandbox = meta.get("grading_sandbox") if isinstance(meta.get("grading_sandbox"), str) else "auto"
    timeout = meta.get("test_timeout")
    workdir = Path(tempfile.mkdtemp(prefix="devloop-review-"))
    try:
        return grade(task, patch, env_manager=env_manager(cache_dir), mirrors=mirrors, workdir=workdir / "grade",
                     test_timeout=float(timeout) if isinstance(timeout, int | float) else DEFAULT_TEST_TIMEOUT,
                     log_dir=workdir / "logs", sandbox="auto" if sandbox == "none" else str(sandbox))  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
