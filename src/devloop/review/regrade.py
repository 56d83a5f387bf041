"""Re-grading a reviewer's corrected patch through the eval grading path, inside the sandbox.

The patch is untrusted text (a model wrote most of it, and the repository's tests run with it applied):
it is applied and tested only by `devloop.eval.grading.grade`, the function `devloop eval` grades with,
under the run's grading rules and limits, and always in bubblewrap. A run graded unconfined (`--sandbox
none`) is still re-graded in bubblewrap: a click in a browser must not run model-written code on the host.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from devloop.eval.checkout import env_manager
from devloop.eval.grading import DEFAULT_TEST_TIMEOUT, grade
from devloop.eval.rundata import RunData
from devloop.eval.verdict import Category, Verdict
from devloop.review.decisions import patch_sha256
from devloop.runtime.bwrap_argv import probe_bwrap
from devloop.runtime.limits import sandbox_limits
from devloop.safefs import read_regular_file

MAX_LOG_BYTES = 16 << 20


def _error(instance_id: str, message: str) -> Verdict:
    return Verdict(instance_id=instance_id, category=Category.ERROR, message=message)


def regrade(run: RunData, instance_id: str, patch: str, cache_dir: Path | None = None) -> Verdict:
    """The verdict of `patch` on the run's task `instance_id`; never raises (a problem is the verdict)."""
    return regrade_with_log(run, instance_id, patch, cache_dir)[0]


def regrade_with_log(
    run: RunData, instance_id: str, patch: str, cache_dir: Path | None = None
) -> tuple[Verdict, str | None]:
    """`regrade`, and the text of its test log (None when the tests did not run): the log's directory is
    removed with the grade, so it is read here."""
    try:
        task = next((t for t in run.tasks() if t.instance_id == instance_id), None)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _error(
            instance_id, f"{run.root / 'tasks.jsonl'}: not task records ({first}); cannot re-grade"
        ), None
    if task is None:
        return _error(
            instance_id, f"{run.root}: no task record for {instance_id} in tasks.jsonl; cannot re-grade"
        ), None
    why = probe_bwrap()
    if why is not None:
        return _error(
            instance_id, f"re-grading runs only in bubblewrap, which does not work here: {why}"
        ), None
    meta = run.store.read_run_meta()
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    try:
        limits = sandbox_limits(
            str(settings.get("memory_limit") or "8G"), str(settings.get("disk_limit") or "10G")
        )
    except ValueError as exc:
        return _error(instance_id, f"{run.root / 'run.json'}: settings: {exc}; cannot re-grade"), None
    mirrors = Path(meta["mirrors"]) if isinstance(meta.get("mirrors"), str) else None
    rules = meta.get("grading") if meta.get("grading") in ("swebench4", "swebench5") else "swebench4"
    timeout = meta.get("test_timeout")
    workdir = Path(tempfile.mkdtemp(prefix="devloop-review-"))
    try:
        verdict = grade(task, patch, env_manager=env_manager(cache_dir), mirrors=mirrors, workdir=workdir / "grade",
                        test_timeout=float(timeout) if isinstance(timeout, int | float) else DEFAULT_TEST_TIMEOUT,
                        log_dir=workdir / "logs", sandbox="bwrap", limits=limits, rules=rules)  # fmt: skip
    except Exception as exc:  # grade() promises not to raise; a bug there must not lose the reviewer's page
        return _error(instance_id, f"re-grading failed: {type(exc).__name__}: {exc}".splitlines()[0]), None
    else:
        name = verdict.logs.get("test")
        try:  # devloop's own copy of what the tests printed, in a directory only the host writes
            log = (
                read_regular_file(workdir / "logs", name, MAX_LOG_BYTES).decode("utf-8", "replace")
                if name
                else None
            )
        except OSError:
            log = None
        return verdict, log
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def regrade_record(verdict: Verdict, patch: str) -> dict[str, Any]:
    """What a decision keeps of a re-grade: the verdict, the tests that decide it, and which patch it was."""
    return {
        "patch_sha256": patch_sha256(patch),
        "category": verdict.category.value,
        "resolution": verdict.resolution.value if verdict.resolution else None,
        "message": verdict.message,
        "FAIL_TO_PASS": verdict.tests_status.FAIL_TO_PASS,
        "PASS_TO_PASS": verdict.tests_status.PASS_TO_PASS,
        "sandbox": verdict.extra.get("sandbox"),
        "grading": verdict.extra.get("grading"),
        "time": time.time(),
    }
