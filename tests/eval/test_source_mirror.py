"""A tree a partial mirror cannot give: the error names the file the copy lacks, not just an object id."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devloop.eval.source import SourceError, extract
from devloop.tasks.model import Task

_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=_ENV
    ).stdout.strip()


def test_a_blob_the_mirror_lacks_is_named_by_its_path(tmp_path):
    mirror = tmp_path / "o__r"
    (mirror / "data").mkdir(parents=True)
    (mirror / "data" / "big.dat").write_text("large table\n")
    (mirror / "small.py").write_text("x = 1\n")
    _git(mirror, "init", "-q")
    _git(mirror, "add", ".")
    _git(mirror, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    commit = _git(mirror, "rev-parse", "HEAD")
    blob = _git(mirror, "rev-parse", "HEAD:data/big.dat")
    task = Task.model_validate(
        {
            "instance_id": "o__r-1",
            "repo": "o/r",
            "base_commit": commit,
            "problem_statement": "",
            "FAIL_TO_PASS": ["t"],
        }
    )
    assert (extract(task, tmp_path, tmp_path / "whole") / "data" / "big.dat").read_text() == "large table\n"
    # A snapshot made without its largest files: the tree still lists the blob, the object is gone.
    (mirror / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(SourceError) as caught:
        extract(task, tmp_path, tmp_path / "partial")
    message = str(caught.value)
    assert "'data/big.dat'" in message and f"blob {blob[:12]}" in message, message
    assert message.startswith(f"git archive {commit[:12]} in {mirror} failed: the repository lacks")
