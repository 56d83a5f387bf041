"""Small committed repositories for the workspace tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def sh(cwd: Path, script: str) -> None:
    subprocess.run(["sh", "-c", script], cwd=cwd, check=True, capture_output=True)


def committed_repo(repo: Path, files: dict[str, str]) -> Path:
    """`repo` made with `files` (relative path -> text) and one commit holding them all."""
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    sh(repo, "git add -A && git -c user.name=t -c user.email=t@t commit -qm init")
    return repo
