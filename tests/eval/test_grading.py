"""grade(): every verdict category, FULL/PARTIAL/NO, and the official rules on test statuses."""

from __future__ import annotations

import os
from pathlib import Path

from devloop.eval import Category, EnvironmentManager, Resolution, grade
from devloop.tasks import Task


def _grade(task: Task, patch: str, env_manager: EnvironmentManager, tmp_path: Path, timeout: float = 120):
    return grade(task, patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work",
                 test_timeout=timeout, log_dir=tmp_path / "logs")  # fmt: skip


def test_gold_patch_resolves_with_every_listed_test_passing(make_task, env_manager, tmp_path):
    task = make_task()
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.RESOLVED, verdict.message
    assert verdict.resolution == Resolution.FULL
    assert verdict.tests["tests/test_calc.py::test_add_param[one"] == "PASSED"  # the official cut id
    assert verdict.tests["tests/test_calc.py::test_known_bug"] == "XFAIL"  # XFAIL counts as passing
    assert verdict.patch_applied_with == "git apply"
    assert (tmp_path / "logs" / "test_output.txt").read_text().count("PASSED") >= 4
    assert verdict.timings["tests"] > 0 and verdict.timings["total"] >= verdict.timings["tests"]


def test_partial_fix_is_partial_and_unresolved(make_task, env_manager, calc_patches, tmp_path):
    verdict = _grade(make_task(), calc_patches["half"], env_manager, tmp_path)
    assert verdict.category == Category.UNRESOLVED
    assert verdict.resolution == Resolution.PARTIAL
    assert verdict.tests_status.FAIL_TO_PASS["failure"] == ["tests/test_calc.py::test_neg"]


def test_fix_that_breaks_a_pass_to_pass_test_is_no(make_task, env_manager, calc_diff, calc_sources, tmp_path):
    patch = calc_diff({"calc.py": calc_sources["fixed"].replace("a * b", "a ** b")})
    verdict = _grade(make_task(), patch, env_manager, tmp_path)
    assert verdict.category == Category.UNRESOLVED
    assert verdict.resolution == Resolution.NO


def test_test_absent_from_log_counts_as_failed(make_task, env_manager, tmp_path):
    task = make_task(FAIL_TO_PASS=["tests/test_calc.py::test_add", "tests/test_calc.py::test_does_not_exist"])
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.UNRESOLVED
    assert verdict.tests["tests/test_calc.py::test_does_not_exist"] == "MISSING"
    assert verdict.resolution == Resolution.PARTIAL


def test_a_skipped_test_is_missing_as_the_official_pytest_parser_reads_it(make_task, env_manager, tmp_path):
    # `-rA` names a skip as `SKIPPED [1] file:line: reason`: the official parser records the pseudo-id
    # `[1]`, never the test, so a listed skipped test is absent and fails (the official lists, computed
    # with that parser, never list one).
    task = make_task(PASS_TO_PASS=["tests/test_calc.py::test_mul", "tests/test_calc.py::test_skipped"])
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.tests["tests/test_calc.py::test_skipped"] == "MISSING"
    assert verdict.category == Category.UNRESOLVED, verdict.message


def test_empty_patch_is_its_own_category(make_task, env_manager, tmp_path):
    verdict = _grade(make_task(), "  \n", env_manager, tmp_path)
    assert verdict.category == Category.EMPTY_PATCH


def test_patch_that_does_not_apply_is_patch_apply_failed(make_task, env_manager, tmp_path):
    patch = make_task().patch.replace(" def add(a, b):", " def add(x, y):")
    verdict = _grade(make_task(), patch, env_manager, tmp_path)
    assert verdict.category == Category.PATCH_APPLY_FAILED
    assert "git apply --reject" in (tmp_path / "logs" / "patch_apply.log").read_text()


def test_patch_only_fuzz_can_apply_falls_back_to_patch(make_task, env_manager, calc_patches, tmp_path):
    # One hunk whose context line "def mul" is wrong: both git apply forms refuse it, patch --fuzz takes it.
    patch = calc_patches["half"].replace(" def mul(a, b):", " def mul(a, b, c=None):")
    assert patch != calc_patches["half"]
    verdict = _grade(make_task(), patch, env_manager, tmp_path)
    assert verdict.patch_applied_with == "patch --fuzz=5", (tmp_path / "logs" / "patch_apply.log").read_text()
    assert verdict.tests["tests/test_calc.py::test_add"] == "PASSED"


def test_test_files_are_reset_to_base_before_the_test_patch(make_task, env_manager, calc_repo, tmp_path):
    # The "fix" rewrites the test file to a passing fake test_add instead of fixing calc.py.
    cheat = (
        "diff --git a/tests/test_calc.py b/tests/test_calc.py\n--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n"
        "@@ -5,2 +5,6 @@ from calc import mul\n \n+def test_add():\n+    assert True\n+\n+\n def test_mul():\n"
    )
    verdict = _grade(make_task(), cheat, env_manager, tmp_path)
    assert verdict.patch_applied_with == "git apply"
    assert verdict.category == Category.UNRESOLVED  # graded on the real tests, not an error
    assert verdict.tests["tests/test_calc.py::test_add"] == "FAILED"


def test_task_without_environment_is_env_error_naming_it(make_task, env_manager, tmp_path):
    task = make_task(environment=None)
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ENV_ERROR
    assert "no `environment`" in verdict.message


def test_missing_python_is_env_error_naming_the_version(make_task, env_manager, spec, tmp_path):
    task = make_task(environment={**spec.model_dump(), "python": "2.1"})
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ENV_ERROR
    assert "Python 2.1" in verdict.message


def test_failing_install_command_is_env_error_with_its_log(make_task, env_manager, spec, tmp_path):
    task = make_task(environment={**spec.model_dump(), "install": "echo building; exit 3"})
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ENV_ERROR
    assert "exit 3" in verdict.message
    assert "building" in (tmp_path / "logs" / "install.log").read_text()


def test_tests_running_past_the_timeout_give_timeout(make_task, env_manager, spec, tmp_path):
    task = make_task(environment={**spec.model_dump(), "test_cmd": "sleep 30; pytest -rA"})
    verdict = _grade(task, task.patch, env_manager, tmp_path, timeout=1)
    assert verdict.category == Category.TIMEOUT
    assert verdict.timings["tests"] < 10


def test_missing_repository_is_error(make_task, env_manager, tmp_path):
    task = make_task(repo_path=str(tmp_path / "nowhere"))
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ERROR
    assert "no repository" in verdict.message


def test_test_patch_that_does_not_apply_is_error(make_task, env_manager, tmp_path):
    bad = make_task().test_patch.replace(" def test_known_bug():", " def test_unknown():")
    task = make_task(test_patch=bad)
    assert bad != make_task().test_patch
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.ERROR
    assert "test patch" in verdict.message


def test_install_command_runs_in_the_tree_with_environment_env(make_task, env_manager, spec, tmp_path):
    env = {**spec.model_dump(), "install": 'test -f calc.py && echo "$MARK" > mark.txt', "env": {"MARK": "42"},
           "test_cmd": 'test "$(cat mark.txt)" = 42 && pytest -rA'}  # fmt: skip
    task = make_task(environment=env)
    verdict = _grade(task, task.patch, env_manager, tmp_path)
    assert verdict.category == Category.RESOLVED, verdict.message


def test_patch_deleting_the_test_files_is_graded_on_the_restored_ones(make_task, env_manager, calc_diff,
                                                                     calc_sources, tmp_path):  # fmt: skip
    # The test directory vanishes with its only file; the host restores it before the test patch, which
    # the sandbox must then be able to apply (the restored directory is handed to its user).
    patch = calc_diff({"calc.py": calc_sources["fixed"], "tests/test_calc.py": None})
    verdict = _grade(make_task(), patch, env_manager, tmp_path)
    assert verdict.category == Category.RESOLVED, verdict.message


def test_a_tree_larger_than_the_disk_limit_is_the_tasks_not_the_runs(
    make_task, env_manager, calc_repo, calc_diff, tmp_path
):
    # The sandbox starts while the tree is extracted into it; the disk limit counts from the tree as
    # extracted, so a repository bigger than the limit still grades, and a test that writes past it does not.
    import subprocess

    import pytest

    from devloop.runtime.bwrap import probe_bwrap
    from devloop.runtime.limits import MIB, Limits

    if probe_bwrap() is not None:
        pytest.skip("bubblewrap cannot run here")
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(calc_repo[0]), str(repo)], check=True)
    (repo / "data.bin").write_bytes(os.urandom(3 * MIB))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), "add", "data.bin"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "data"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip
    task = make_task(base_commit=head, repo_path=str(repo))
    limits = Limits(disk_bytes=1 * MIB)
    verdict = grade(task, task.patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work",
                    test_timeout=120, log_dir=tmp_path / "logs", sandbox="bwrap", limits=limits)  # fmt: skip
    assert verdict.category == Category.RESOLVED, verdict.message
    assert verdict.extra["sandbox"] == "bwrap" and "tests_note" not in verdict.extra
    # Four files of half a MiB (each under the per-file cap, which the limit also lowers to 1 MiB).
    writes = "for i in range(4):\n    open(f'out{i}.bin', 'wb').write(b'x' * (512 * 1024))\n"
    writer = task.patch + calc_diff({"conftest.py": writes})
    verdict = grade(task, writer, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work2",
                    test_timeout=120, log_dir=tmp_path / "logs2", sandbox="bwrap", limits=limits)  # fmt: skip
    assert "disk limit" in verdict.extra.get("tests_note", ""), verdict.extra


def test_a_missing_base_commit_in_the_sandbox_says_so_and_leaves_no_sandbox(make_task, env_manager, tmp_path):
    # The tree is extracted while the sandbox boots: the extraction's error is the verdict's, and the
    # half-started sandbox is ended with it.
    import pytest

    from devloop.runtime import procs
    from devloop.runtime.bwrap import probe_bwrap

    if probe_bwrap() is not None:
        pytest.skip("bubblewrap cannot run here")
    task = make_task(base_commit="0" * 40)

    def bwraps() -> set[int]:
        mine = procs.descendants(os.getpid(), procs.snapshot())
        return {pid for pid in mine if Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap"}

    verdict = grade(task, task.patch, env_manager=env_manager, mirrors=None, workdir=tmp_path / "work",
                    test_timeout=120, log_dir=tmp_path / "logs", sandbox="bwrap")  # fmt: skip
    assert verdict.category == Category.ERROR
    assert "0000000000" in verdict.message and "bwrap" not in verdict.message, verdict.message
    assert not bwraps()
