"""The oracle script, replayed with str_replace semantics, must reproduce the gold patch exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devloop.eval.oracle import OracleError, oracle_script, write_oracle_script
from devloop.tasks import Task

DUPLICATED = "def f():\n    x = 1\n    return x\n\n\n" * 3 + "def g():\n    return 0\n"


def replay(messages: list[dict], tree: Path) -> None:
    """Apply the calls as the agent's tools would: str_replace demands exactly one match."""
    for message in messages:
        call = message["tool_calls"][0]["function"]
        args = json.loads(call["arguments"])
        if call["name"] == "str_replace_editor":
            path = tree / args["path"]
            if args["command"] == "view":
                assert path.exists(), args["path"]
            elif args["command"] == "create":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(args["file_text"])
            else:
                text = path.read_text()
                assert text.count(args["old_str"]) == 1, f"old_str not unique in {args['path']}"
                path.write_text(text.replace(args["old_str"], args["new_str"]))
        elif call["name"] == "execute_bash" and args["command"].startswith(("rm ", "mv ")):
            subprocess.run(args["command"], shell=True, cwd=tree, check=True)


def _repo(path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], cwd=path, check=True
    )
    return path


def _diff(tree: Path, changes: dict[str, str | None]) -> str:
    for rel, text in changes.items():
        if text is None:
            (tree / rel).unlink()
        else:
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    patch = subprocess.run(
        ["git", "diff", "--cached", "-U1"], cwd=tree, capture_output=True, text=True
    ).stdout
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=tree, check=True)
    subprocess.run(["git", "clean", "-fdq"], cwd=tree, check=True)
    return patch


def _snapshot(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): p.read_text() for p in sorted(tree.rglob("*"))
            if p.is_file() and ".git" not in p.parts}  # fmt: skip


def _task(patch: str) -> Task:
    return Task(instance_id="o-1", repo="o/o", base_commit="0" * 40, problem_statement="p", patch=patch,
                FAIL_TO_PASS=[], test_patch="diff --git a/tests/test_a.py b/tests/test_a.py\n")  # fmt: skip


def test_oracle_reproduces_edits_creations_deletions_and_duplicate_blocks(tmp_path):
    base = {"a.py": DUPLICATED, "old.txt": "bye\n", "tests/test_a.py": "def test(): pass\n",
            "nonl.py": "x = 1\ny = 2"}  # fmt: skip
    tree = _repo(tmp_path / "tree", base)
    changed = DUPLICATED.replace("def g():\n    return 0\n", "def g():\n    return 1\n")
    # The second copy of f changes: its hunk (with -U1 context) occurs three times until widened.
    parts = changed.split("def f():")
    parts[2] = parts[2].replace("x = 1", "x = 2")
    changed = "def f():".join(parts)
    patch = _diff(
        tree, {"a.py": changed, "old.txt": None, "new/b.py": "print('hi')\n", "nonl.py": "x = 1\ny = 3"}
    )
    messages = oracle_script(_task(patch), tree)

    names = [json.loads(m["tool_calls"][0]["function"]["arguments"]).get("command") for m in messages]
    assert names[-1] is None and messages[-1]["tool_calls"][0]["function"]["name"] == "finish"
    assert "str_replace" in names and "create" in names
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "execute_bash"
    assert "tests/test_a.py" in json.loads(messages[-2]["tool_calls"][0]["function"]["arguments"])["command"]

    expected = tmp_path / "expected"
    shutil.copytree(tree, expected)
    subprocess.run(["git", "apply", "-"], input=patch, text=True, cwd=expected, check=True)
    replay(messages, tree)
    assert _snapshot(tree) == _snapshot(expected)


def test_oracle_on_the_calc_task_reproduces_gold(make_task, calc_repo, tmp_path):
    repo, _ = calc_repo
    tree = tmp_path / "tree"
    shutil.copytree(repo, tree)
    task = make_task()
    messages = oracle_script(task, tree, shown_root=None)
    expected = tmp_path / "expected"
    shutil.copytree(repo, expected)
    subprocess.run(["git", "apply", "-"], input=task.patch, text=True, cwd=expected, check=True)
    replay(messages, tree)
    assert (tree / "calc.py").read_text() == (expected / "calc.py").read_text()
    path = write_oracle_script(tmp_path / "oracle.jsonl", messages)
    lines = path.read_text().splitlines()
    assert len(lines) == len(messages) and json.loads(lines[0])["role"] == "assistant"


def test_shown_root_prefixes_paths(make_task, calc_repo):
    messages = oracle_script(make_task(), calc_repo[0], shown_root="/workspace/repo")
    first = json.loads(messages[0]["tool_calls"][0]["function"]["arguments"])
    assert first["path"] == "/workspace/repo/calc.py"


def test_gold_patch_that_does_not_fit_the_tree_raises(tmp_path):
    tree = _repo(tmp_path / "tree", {"a.py": "a = 1\n"})
    patch = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-b = 1\n+b = 2\n"
    with pytest.raises(OracleError, match="does not match"):
        oracle_script(_task(patch), tree)
