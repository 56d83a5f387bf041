"""`devloop validate`: gold and the test patch alone, graded by the eval engine, judged per instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.eval.verdict import Category, Verdict
from devloop.swebench.validation import judge, shipped, validated_ids
from devloop.tasks.model import Task

CHECK = (
    'if grep -q new a.txt; then echo "PASSED tests/check.sh::t"; else echo "FAILED tests/check.sh::t"; fi\n'
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), *args],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def _diff(repo: Path, write: dict[str, str]) -> str:
    for name, text in write.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    patch = _git(repo, "diff", "--cached")
    _git(repo, "reset", "-q", "--hard")
    subprocess.run(["git", "-C", str(repo), "clean", "-qfdx"], check=True)
    return patch


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two instances on one repository: a sound one, and one whose gold patch fixes nothing."""
    root = tmp_path_factory.mktemp("validate")
    repo = root / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("old\n")
    (repo / "b.txt").write_text("old\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    test_patch = _diff(repo, {"tests/check.sh": CHECK})
    environment = {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "test_cmd": "sh",
                   "log_parser": "pytest"}  # fmt: skip
    common = {"repo": "own/own", "base_commit": base, "problem_statement": "", "test_patch": test_patch,
              "FAIL_TO_PASS": ["tests/check.sh::t"], "repo_path": str(repo), "environment": environment}  # fmt: skip
    records = [
        {**common, "instance_id": "own__own-1", "patch": _diff(repo, {"a.txt": "new\n"})},
        {**common, "instance_id": "own__own-2", "patch": _diff(repo, {"b.txt": "new\n"})},
    ]
    path = root / "tasks.json"
    path.write_text(json.dumps(records))
    return path


def test_validate_writes_the_report_and_fails_the_unsound_instance(tasks_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    done = CliRunner().invoke(app, ["validate", "--tasks", str(tasks_file), "--output", str(out), "--run-id", "v",
                                    "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "1 of 2 validated" in done.output
    data = json.loads((out / "v" / "validation.json").read_text())
    rows = {r["instance_id"]: r for r in data["instances"]}
    assert rows["own__own-1"]["result"] == "validated"
    assert (rows["own__own-1"]["gold"], rows["own__own-1"]["empty"]) == ("resolved", "unresolved")
    assert rows["own__own-1"]["empty_fail_to_pass_failing"] == 1
    assert rows["own__own-2"]["result"] == "failed" and rows["own__own-2"]["reason"].startswith(
        "gold is unresolved"
    )
    assert data["summary"]["own/own"] == {**data["summary"]["own/own"], "tried": 2, "validated": 1,
                                          "gold_resolved": 1, "empty_resolved": 0, "env_errors": 0}  # fmt: skip
    # Both runs are ordinary eval runs: the empty one graded the test patch alone.
    empty = json.loads((out / "v" / "empty" / "instances" / "own__own-1" / "verdict.json").read_text())
    assert empty["tests"] == {"tests/check.sh::t": "FAILED"}
    assert "mean_install_s" in data["summary"]["own/own"]  # None here: the environment installs nothing
    # The machine's facts the official containers fix, for whoever reads the report.
    assert data["host"]["cpus"] >= 1 and isinstance(data["host"]["locales"], list)
    listed = json.loads((out / "v" / "validated.json").read_text())["instances"]
    assert listed[1]["reason"].startswith("gold is unresolved")
    assert [(e["instance_id"], e["result"]) for e in listed] == [
        ("own__own-1", "validated"),
        ("own__own-2", "failed"),
    ]


def _verdict(category: Category, **fields) -> Verdict:
    return Verdict(instance_id="x__y-1", category=category, **fields)


def test_judging_names_env_errors_and_a_test_patch_that_passes_alone() -> None:
    task = Task.model_validate({"instance_id": "x__y-1", "repo": "x/y", "base_commit": "a" * 40,
                                "problem_statement": "", "FAIL_TO_PASS": ["t"], "test_patch": "diff"})  # fmt: skip
    env = judge(task, _verdict(Category.ENV_ERROR, message="no Python 3.1"), _verdict(Category.ENV_ERROR))
    assert (env.result, env.reason) == ("env_error", "no Python 3.1")
    passes = judge(task, _verdict(Category.RESOLVED), _verdict(Category.RESOLVED))
    assert passes.result == "failed" and "test patch alone is resolved" in passes.reason
    # A gold run whose tests reached for the network (httpbin.org) the sandbox lacks: this machine's
    # environment, not the instance, so env_error with the log line as evidence.
    log = (
        "test_requests.py::RequestsTestCase::test_HTTP_200_OK_GET FAILED\n"
        "E   ConnectionError: HTTPConnectionPool(host='httpbin.org', port=80): Max retries exceeded "
        "(Caused by NewConnectionError(... [Errno -3] Temporary failure in name resolution))\n"
    )
    offline = judge(task, _verdict(Category.UNRESOLVED), _verdict(Category.UNRESOLVED), log)
    assert offline.result == "env_error" and offline.reason.startswith("the network: gold is unresolved")
    assert "httpbin.org" in offline.reason
    # A tree the mirror cannot give (a snapshot without a large blob) is this machine's copy, not the instance.
    broken = _verdict(Category.ERROR, message="git archive 7269fa3e33e8 in m failed: error: cannot read 'x'")
    mirror = judge(task, broken, _verdict(Category.ERROR, message=broken.message))
    assert mirror.result == "env_error" and mirror.reason.startswith("the mirror: git archive")
    # The same log beside a resolved gold run, or an unresolved one with no such line, is no evidence.
    assert judge(task, _verdict(Category.RESOLVED), _verdict(Category.UNRESOLVED), log).result != "env_error"
    plain = judge(task, _verdict(Category.UNRESOLVED), _verdict(Category.UNRESOLVED), "E   assert 1 == 2\n")
    assert plain.result == "failed" and plain.reason.startswith("gold is unresolved")


def test_the_shipped_list_is_well_formed() -> None:
    entries = shipped()["instances"]
    assert all({"repo", "version", "instance_id", "result"} <= set(e) <= {"repo", "version", "instance_id",
               "result", "reason"} for e in entries)  # fmt: skip
    assert all("reason" not in e for e in entries if e["result"] == "validated")
    assert validated_ids() == {e["instance_id"] for e in entries if e["result"] == "validated"}


def test_eval_validated_only_keeps_the_shipped_validated_instances(tasks_file: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from devloop.cli.eval_cmd import keep_validated

    shipped_id = sorted(validated_ids())[0]
    records = json.loads(tasks_file.read_text())
    tasks = [Task.model_validate({**records[0], "instance_id": i}) for i in (shipped_id, "own__own-1")]
    assert [t.instance_id for t in keep_validated(tasks, Console(file=None, quiet=True))] == [shipped_id]
    done = CliRunner().invoke(app, ["eval", "--tasks", str(tasks_file), "--predictions", "gold", "--validated-only",
                                    "--output", str(tmp_path / "runs")])  # fmt: skip
    assert done.exit_code == 2
    assert (
        "--validated-only: none of the 2 task(s) is in the shipped list of validated instances" in done.output
    )


def test_a_new_run_extends_the_shipped_list_and_keeps_its_earlier_entries() -> None:
    from devloop.swebench.validation import merged, shipped

    earlier = [{"instance_id": "b-1", "result": "validated"}, {"instance_id": "a-1", "result": "failed"}]
    later = [{"instance_id": "a-1", "result": "validated"}, {"instance_id": "c-1", "result": "env_error"}]
    assert merged(earlier, later) == [
        {"instance_id": "a-1", "result": "validated"},
        {"instance_id": "b-1", "result": "validated"},
        {"instance_id": "c-1", "result": "env_error"},
    ]
    entries = shipped()["instances"]
    assert merged(entries, []) == sorted(entries, key=lambda e: e["instance_id"])
