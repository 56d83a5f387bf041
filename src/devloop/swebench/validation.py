"""Whether an instance is sound here: its gold patch resolves, and its test patch alone does not.

Both are graded by the eval engine as ordinary predictions, so validation has no grading of its own:
- gold: the record's `patch`;
- empty: the record's `test_patch` as the prediction. Grading applies the prediction, resets every file the
  test patch touches to base_commit and applies the test patch, so the tree is exactly base + test patch,
  the official "empty prediction" state (a prediction with no patch at all is never tested).

An instance is `validated` when gold resolves and the empty run leaves at least one FAIL_TO_PASS test
failing; `env_error` when either run had no environment; `failed` otherwise, with the reason.
The shipped list (`validated_lite.json`) is what `devloop eval --validated-only` keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel

from devloop.eval.verdict import Category, Verdict
from devloop.tasks.model import Prediction, Task

GOLD, EMPTY = "gold", "empty"
SHIPPED = "validated_lite.json"


def predictions(tasks: Iterable[Task], which: str) -> dict[str, Prediction]:
    """The `gold` or `empty` predictions of `tasks` (see the module docstring for what `empty` is)."""
    return {
        t.instance_id: Prediction(
            instance_id=t.instance_id,
            model_name_or_path=which,
            model_patch=t.patch if which == GOLD else t.test_patch,
        )
        for t in tasks
    }


class InstanceValidation(BaseModel):
    """One instance's validation: both verdicts, the times, and why it is not validated."""

    instance_id: str
    repo: str
    version: str | None
    result: str
    """validated, failed or env_error."""
    gold: str | None
    empty: str | None
    """The two verdicts' categories (None: no verdict)."""
    empty_fail_to_pass_failing: int = 0
    env_s: float | None = None
    install_s: float | None = None
    tests_s: float | None = None
    """The gold run's times (the empty run reuses its environment)."""
    build_cache: str | None = None
    empty_build_cache: str | None = None
    """What the build cache did in the gold and the empty run (filled, reused, off, not cacheable: why;
    None: no install step), and the seconds its restore took in each."""
    build_cache_restore_s: float | None = None
    empty_build_cache_restore_s: float | None = None
    empty_install_s: float | None = None
    reason: str = ""


def _timing(verdict: Verdict | None, key: str) -> float | None:
    return verdict.timings.get(key) if verdict is not None else None


def _extra(verdict: Verdict | None, key: str) -> str | None:
    value = verdict.extra.get(key) if verdict is not None else None
    return value if isinstance(value, str) else None


# What a test that reached for the network prints in a sandbox that has none (requests' httpbin.org
# tests, a download at test time): the official containers have the network, so such an instance is
# an environment this machine cannot give, not a failed one.
_NO_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|nodename nor servname"
    r"|\[Errno -[23]\]|Network is unreachable|getaddrinfo failed"
)


def network_evidence(log: str) -> str | None:
    """The first log line showing a test reached for the network and found none, or None."""
    for line in log.splitlines():
        if _NO_NETWORK.search(line):
            return line.strip()[:200]
    return None


def judge(
    task: Task, gold: Verdict | None, empty: Verdict | None, gold_log: str | None = None
) -> InstanceValidation:
    """The validation of `task` from its gold and empty verdicts (`gold_log`: the gold run's test log,
    read for evidence that its tests needed the network)."""
    failing = len(empty.tests_status.FAIL_TO_PASS["failure"]) if empty is not None else 0
    result, reason = "validated", ""
    evidence = network_evidence(gold_log) if gold_log and gold is not None and not gold.resolved else None
    if gold is None or empty is None:
        result, reason = "failed", "no verdict: the run was interrupted"
    elif Category.ENV_ERROR in (gold.category, empty.category):
        result = "env_error"
        reason = gold.message if gold.category == Category.ENV_ERROR else empty.message
    elif gold.category == Category.ERROR and gold.message.startswith("git archive"):
        # The tree could not be extracted from the mirror (a snapshot lacking a large file): this
        # machine's copy of the repository, not the instance.
        result, reason = "env_error", f"the mirror: {gold.message}"
    elif evidence is not None:
        result = "env_error"
        reason = (
            f"the network: gold is {gold.category.value} and its tests reached for the network, which the "
            f"grading sandbox does not give (the official containers do): {evidence}"
        )
    elif not gold.resolved:
        result, reason = "failed", f"gold is {gold.category.value}: {gold.message}"
    elif not task.test_patch.strip():
        result, reason = "failed", "the record has no test patch"
    elif empty.resolved or not failing:
        result = "failed"
        reason = f"the test patch alone is {empty.category.value} with no FAIL_TO_PASS test failing"
    return InstanceValidation(
        instance_id=task.instance_id, repo=task.repo, version=task.version, result=result,
        gold=gold.category.value if gold else None, empty=empty.category.value if empty else None,
        empty_fail_to_pass_failing=failing, env_s=_timing(gold, "env"), install_s=_timing(gold, "install"),
        tests_s=_timing(gold, "tests"), reason=reason,
        build_cache=_extra(gold, "build_cache"), empty_build_cache=_extra(empty, "build_cache"),
        build_cache_restore_s=_timing(gold, "build_cache_restore"),
        empty_build_cache_restore_s=_timing(empty, "build_cache_restore"), empty_install_s=_timing(empty, "install"),
    )  # fmt: skip


def summary(rows: Sequence[InstanceValidation]) -> dict[str, dict[str, Any]]:
    """Per repository: tried, validated, gold resolved, empty resolved, env errors, mean env/install/tests
    time."""
    out: dict[str, dict[str, Any]] = {}
    for repo in sorted({r.repo for r in rows}):
        mine = [r for r in rows if r.repo == repo]
        env = [r.env_s for r in mine if r.env_s is not None]
        install = [r.install_s for r in mine if r.install_s is not None]
        tests = [r.tests_s for r in mine if r.tests_s is not None]
        out[repo] = {
            "tried": len(mine),
            "validated": sum(r.result == "validated" for r in mine),
            "gold_resolved": sum(r.gold == Category.RESOLVED.value for r in mine),
            "empty_resolved": sum(r.empty == Category.RESOLVED.value for r in mine),
            "env_errors": sum(r.result == "env_error" for r in mine),
            "mean_env_s": round(sum(env) / len(env), 2) if env else None,
            "mean_install_s": round(sum(install) / len(install), 2) if install else None,
            "mean_tests_s": round(sum(tests) / len(tests), 2) if tests else None,
        }
    return out


def report(rows: Sequence[InstanceValidation], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The validation report as written to validation.json."""
    return {**meta, "summary": summary(rows), "instances": [r.model_dump(mode="json") for r in rows]}


def shipped_entries(rows: Sequence[InstanceValidation]) -> list[dict[str, Any]]:
    """The rows in the shipped list's form: repo, version, instance_id, result (and the reason of one
    not validated), sorted by id."""
    return sorted(
        (
            {"repo": r.repo, "version": r.version, "instance_id": r.instance_id, "result": r.result}
            | ({"reason": r.reason[:300]} if r.result != "validated" and r.reason else {})
            for r in rows
        ),
        key=lambda e: str(e["instance_id"]),
    )


@cache
def shipped() -> dict[str, Any]:
    """The shipped list of Lite instances validated on this project's machines."""
    text = resources.files("devloop.swebench").joinpath(SHIPPED).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def validated_ids() -> frozenset[str]:
    """The ids the shipped list has as validated."""
    return frozenset(e["instance_id"] for e in shipped()["instances"] if e["result"] == "validated")


def merged(earlier: Sequence[Mapping[str, Any]], later: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The shipped list's entries: `earlier` ones kept, an instance validated again taking its `later`
    entry, sorted by id (how a new validation run extends the list)."""
    by_id = {str(e["instance_id"]): dict(e) for e in earlier}
    by_id.update({str(e["instance_id"]): dict(e) for e in later})
    return [by_id[k] for k in sorted(by_id)]
