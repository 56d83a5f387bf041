"""Escape attempts through task and predictions files: ids and patch paths that aim outside the instance tree.

These run host-side code (loaders, the run directory, reset to base, grading's first checks), so they need no
bubblewrap. Each plants a marker outside the tree (or where the attack would write) and asserts it is unchanged.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from devloop.eval import Category, EnvironmentManager, RunStore, grade
from devloop.eval.attempt import AttemptJob, HarnessSettings, run_attempt
from devloop.eval.source import SourceError, _clean_rejects, extract, reset_to_base
from devloop.eval.store import UnitStore
from devloop.tasks import Task, TaskLoadError, load_tasks

BASE_TEST = "def test_one():\n    assert True\n"


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return proc.stdout


@pytest.fixture
def base_repo(tmp_path: Path) -> tuple[Path, str]:
    """A one-commit repository with tests/test_one.py; returns (repo, commit)."""
    repo = tmp_path / "mirror"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_one.py").write_text(BASE_TEST)
    (repo / "one.py").write_text("X = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    return repo, _git(repo, "rev-parse", "HEAD").strip()


def _record(repo: Path, commit: str, **fields: object) -> dict:
    return {"instance_id": "one__one-1", "repo": "one/one", "base_commit": commit, "problem_statement": "p",
            "FAIL_TO_PASS": ["tests/test_one.py::test_one"], "repo_path": str(repo), **fields}  # fmt: skip


def _unchecked(repo: Path, commit: str, **fields: object) -> Task:
    """A Task built as a careless caller might: without the loader's (or the model's) checks."""
    return Task.model_construct(**_record(repo, commit, **fields))


@pytest.fixture
def marker(tmp_path: Path) -> tuple[Path, str]:
    """A directory outside every tree, holding a file with a secret only this test knows."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = secrets.token_hex(8)
    (outside / "test_one.py").write_text(secret)
    (outside / "test_one.py.rej").write_text(secret)
    return outside, secret


def _intact(outside: Path, secret: str) -> bool:
    return all((outside / name).read_text() == secret for name in ("test_one.py", "test_one.py.rej"))


@pytest.mark.parametrize("bad", ["..", "a/b", "x\x00y"])
def test_instance_id_aimed_at_the_run_directory(bad, base_repo, tmp_path, escape):
    repo, commit = base_repo
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(_record(repo, commit, instance_id=bad)) + "\n")
    run_root = tmp_path / "runs" / "r1"
    with escape(f"instance_id {bad!r} in a task file", by="id checked at load (file:line: instance_id:)"):
        with pytest.raises(TaskLoadError) as err:
            load_tasks(tasks, strict=True)
        assert str(err.value).startswith(f"{tasks}:1: instance_id: ") and "\n" not in str(err.value)
    with escape(f"instance_id {bad!r} past the loader into the run dir", by="RunStore refuses unsafe ids"):
        settings = HarnessSettings(tmp_path / "runs", "r1", test_timeout=60.0)
        with pytest.raises(ValueError) as err:
            run_attempt(AttemptJob(_unchecked(repo, commit, instance_id=bad), 0, None, settings, patch=""))
        assert "\n" not in str(err.value) and "instance id" in str(err.value)
        for store_call in (lambda s: s.instance_dir(bad), lambda s: s.unit_dir(bad, 0)):
            with pytest.raises(ValueError):
                store_call(UnitStore(tmp_path / "runs", "r1"))
        # `..` made instances/.. (the run root) the instance's directory: verdict.json landed there.
        assert not run_root.exists()


@pytest.mark.parametrize("target", ["../outside/test_one.py", "../outside", ".git/config"])
def test_test_patch_path_aimed_outside_the_tree(target, base_repo, marker, tmp_path, escape):
    repo, commit = base_repo
    outside, secret = marker
    tree = extract(_unchecked(repo, commit), None, tmp_path / "tree")
    _git(tree, "init", "-q")  # an agent tree has a .git; its config must survive too
    config = (tree / ".git" / "config").read_text()
    patch = f"--- a/{target}\n+++ b/{target}\n@@ -1 +1 @@\n-x\n+y\n"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(_record(repo, commit, test_patch=patch)) + "\n")
    with escape(f"test_patch touching {target} (task file)", by="patch paths checked at load"):
        with pytest.raises(TaskLoadError) as err:
            load_tasks(tasks, strict=True)
        assert str(err.value).startswith(f"{tasks}:1: test_patch: path ") and "\n" not in str(err.value)
    with escape(f"test_patch touching {target} (reset to base)", by="reset_to_base refuses unsafe paths"):
        with pytest.raises(SourceError) as serr:
            reset_to_base(_unchecked(repo, commit, test_patch=patch), None, tree, [target])
        assert "refusing to reset test path" in str(serr.value) and "\n" not in str(serr.value)
        assert _intact(outside, secret) and (tree / ".git" / "config").read_text() == config


def test_symlinked_directory_in_the_tree_named_by_a_test_patch(base_repo, marker, tmp_path, escape):
    repo, commit = base_repo
    outside, secret = marker
    tree = extract(_unchecked(repo, commit), None, tmp_path / "tree")
    # What an install command or a model patch could leave: tests/ replaced by a link to a host directory.
    (tree / "tests" / "test_one.py").unlink()
    (tree / "tests").rmdir()
    (tree / "tests").symlink_to(outside)
    with escape("symlinked dir in the tree, reset by a test patch path", by="openat O_NOFOLLOW walk"):
        reset_to_base(_unchecked(repo, commit), None, tree, ["tests/test_one.py"])
        assert _intact(outside, secret)
        # The link itself was removed and the base file restored in a real directory.
        assert not (tree / "tests").is_symlink() and (tree / "tests" / "test_one.py").read_text() == BASE_TEST
    (tree / "tests" / "test_one.py").unlink()
    (tree / "tests").rmdir()
    (tree / "tests").symlink_to(outside)
    with escape(
        "symlinked dir in the tree, .rej cleanup after a fallback apply", by="openat O_NOFOLLOW walk"
    ):
        _clean_rejects(tree, "--- a/tests/test_one.py\n+++ b/tests/test_one.py\n@@ -1 +1 @@\n-x\n+y\n")
        assert _intact(outside, secret)
    with escape(".rej cleanup through ../ in a model patch", by="unsafe paths skipped"):
        (tree / "sub").mkdir()
        _clean_rejects(
            tree / "sub", "--- a/../outside/test_one.py\n+++ b/../outside/test_one.py\n@@ -1 +1 @@\n"
        )
        assert _intact(outside, secret)


def test_model_patch_aimed_outside_fails_only_its_own_instance(base_repo, marker, tmp_path, escape):
    repo, commit = base_repo
    outside, secret = marker
    task = Task.model_validate(_record(repo, commit))
    patch = "--- a/../outside/test_one.py\n+++ b/../outside/test_one.py\n@@ -1 +1 @@\n-x\n+pwned\n"
    with escape(
        "prediction patching ../outside", by="patch paths checked before grading (patch_apply_failed)"
    ):
        verdict = grade(task, patch, env_manager=EnvironmentManager(tmp_path / "cache"), mirrors=None,
                        workdir=tmp_path / "work", log_dir=tmp_path / "logs")  # fmt: skip
        assert verdict.category == Category.PATCH_APPLY_FAILED
        assert (
            verdict.message == "the patch was not applied: path '../outside/test_one.py' has a '..' component"
        )
        assert _intact(outside, secret)
    # The rest of the run goes on: another instance's verdict is written as usual.
    store = RunStore(tmp_path / "runs", "r1")
    settings = HarnessSettings(tmp_path / "runs", "r1", tmp_path / "cache", test_timeout=60.0)
    other = Task.model_validate(_record(repo, commit, instance_id="one__one-2"))
    for t, p in ((task, patch), (other, "")):
        run_attempt(AttemptJob(t, 0, None, settings, patch=p))
    assert store.read_unit("one__one-1", 0).verdict.category == Category.PATCH_APPLY_FAILED
    assert store.read_unit("one__one-2", 0).verdict.category == Category.EMPTY_PATCH
