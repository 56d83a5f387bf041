"""One --mirrors directory serves every command, in either layout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devloop.eval.source import NoRepository, find_repository
from devloop.retrieval.localize import mirror_of
from devloop.tasks.mirrors import mirror_candidates, mirror_git_dir
from devloop.tasks.model import Task


def bare(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def task(repo: str) -> Task:
    return Task(
        instance_id="o__n-1", repo=repo, base_commit="0" * 40, problem_statement="p", FAIL_TO_PASS=["t"]
    )


@pytest.mark.parametrize("layout", ["o__n", "o__n.git", "o+n/repo", "o+n"])
def test_eval_and_localize_find_the_same_mirror_in_each_layout(tmp_path: Path, layout: str) -> None:
    made = bare(tmp_path / layout)
    assert find_repository(task("o/n"), tmp_path) == made
    assert mirror_of(tmp_path, "o/n") == made == mirror_git_dir(tmp_path, "o/n")


def test_a_clone_s_git_dir_is_found_and_a_missing_mirror_names_where_it_looked(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "o+n" / "repo")], check=True)
    assert mirror_git_dir(tmp_path, "o/n") == tmp_path / "o+n" / "repo" / ".git"
    with pytest.raises(NoRepository, match=r"looked in .*a__b, .*a__b\.git, .*a\+b/repo, .*a\+b$"):
        find_repository(task("a/b"), tmp_path)


def test_a_name_that_is_not_one_directory_is_looked_for_nowhere(tmp_path: Path) -> None:
    bare(tmp_path / "x")
    assert mirror_candidates(tmp_path / "x", "..") == [] and mirror_git_dir(tmp_path / "x", "..") is None
