"""Run directories written through the eval store, as `devloop eval` leaves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.eval.engine import write_tasks
from devloop.eval.records import UnitRecord
from devloop.eval.store import RunStore
from devloop.eval.verdict import Category, Resolution, TestsStatus, Verdict
from devloop.tasks.model import Task

HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
# A file name a model can give its patch (no spaces, so it stays one path in the diff header).
HOSTILE_NAME = "b<img/src=x/onerror=window.pwned=3>.py"


# What pytest prints for one failing test (with model-printed markup in it), as the grade keeps it.
PYTEST_LOG = f"""$ pytest -rA t.py
============================= test session starts ==============================
collected 2 items

t.py F.                                                                  [100%]

=================================== FAILURES ===================================
____________________________________ test_a ____________________________________

    def test_a():
>       assert parse("{HOSTILE}") == 2
E       AssertionError: assert 1 == 2
E        +  where 1 = parse('{HOSTILE}')

t.py:3: AssertionError
----------------------------- Captured stdout call -----------------------------
noise that is not an error line
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED t.py::test_b
FAILED t.py::test_a - AssertionError: assert 1 == 2
========================= 1 failed, 1 passed in 0.01s ==========================
"""


def patch_for(name: str, body: str) -> str:
    return f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-old\n+{body}\n"


def make_run(root: Path, run_id: str, units: list[dict]) -> Path:
    """units: dicts with id, category, needs_review, patch."""
    store = RunStore(root, run_id)
    store.root.mkdir(parents=True)
    tasks = [Task(instance_id=u["id"], repo=u.get("repo", "calc/calc"), base_commit="abc",
                  problem_statement=u.get("issue", f"fix {u['id']}"), FAIL_TO_PASS=["t::test_a"],
                  PASS_TO_PASS=["t::test_b"]) for u in units]  # fmt: skip
    write_tasks(store, tasks)
    for u in units:
        cat = Category(u["category"])
        ok = cat == Category.RESOLVED
        verdict = Verdict(instance_id=u["id"], category=cat,
                          resolution=Resolution.FULL if ok else Resolution.NO if cat == Category.UNRESOLVED else None,
                          message="" if ok else "1 of 1 FAIL_TO_PASS tests failed",
                          tests={"t::test_a": "PASSED" if ok else "FAILED", "t::test_b": "PASSED"},
                          tests_status=TestsStatus(FAIL_TO_PASS={"success": ["t::test_a"] if ok else [],
                                                                 "failure": [] if ok else ["t::test_a"]},
                                                   PASS_TO_PASS={"success": ["t::test_b"], "failure": []}),
                          logs={"test": "test_output.txt"} if "log" in u else {})  # fmt: skip
        store.write_unit(UnitRecord(instance_id=u["id"], index=0, temperature=0.0, max_iterations=5,
                                    settings_key="k", exit_status="finished", steps=1, patch=u["patch"],
                                    verdict=verdict))  # fmt: skip
        store.write_verdict(verdict)
        if "log" in u:
            store.unit_dir(u["id"], 0).mkdir(parents=True, exist_ok=True)
            (store.unit_dir(u["id"], 0) / "test_output.txt").write_text(u["log"])
        agent = store.unit_dir(u["id"], 0) / "agent"
        agent.mkdir(parents=True)
        (agent / "result.json").write_text(json.dumps({"exit_status": "finished",
                                                       "needs_review": u.get("needs_review", False)}))  # fmt: skip
        (agent / "trajectory.jsonl").write_text(
            json.dumps({"type": "start"})
            + "\n"
            + json.dumps({"type": "step", "step": 1, "action": HOSTILE})
            + "\n"
        )
    store.write_meta({"run_id": run_id, "model_name_or_path": "m"})
    store.write_report([u["id"] for u in units])
    return store.root


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, "run1", [
        {"id": "a__a-1", "category": "unresolved", "patch": patch_for("a.py", "new a")},
        {"id": "b__b-2", "category": "unresolved", "needs_review": True, "patch": patch_for(HOSTILE_NAME, HOSTILE),
         "issue": "issue text " + HOSTILE, "repo": "bee/bee", "log": PYTEST_LOG},
        {"id": "c__c-3", "category": "resolved", "patch": patch_for("c.py", "new c")},
        {"id": "d__d-4", "category": "patch_apply_failed", "patch": patch_for("d.py", "new d")},
    ])  # fmt: skip
