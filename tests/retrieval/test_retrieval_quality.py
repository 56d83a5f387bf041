"""bench/retrieval_quality.py on a tiny mirror: the tree at base_commit, gold files from the patch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "retrieval_quality.py"


def test_gold_file_ranked_from_the_base_commit(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("retrieval_quality", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    work = tmp_path / "work"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "cookies.py").write_text("def parse_cookie_header(line):\n    return line\n")
    (work / "pkg" / "maths.py").write_text("def add(a, b):\n    return a + b\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    base = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (work / "pkg" / "maths.py").write_text("def cookie_header_parsing(): pass\n")  # after the base: unseen
    mirror = tmp_path / "mirrors" / "o+r"
    mirror.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirror / "repo")], check=True)
    patch = "diff --git a/pkg/cookies.py b/pkg/cookies.py\n--- a/pkg/cookies.py\n+++ b/pkg/cookies.py\n"
    record = {
        "repo": "o/r",
        "base_commit": base,
        "patch": patch,
        "problem_statement": "Cookie header parsing",
    }
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([record]))
    assert (
        bench.main(["--tasks", str(tasks), "--mirrors", str(tmp_path / "mirrors"), "--k", "1", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["overall"] == {"n": 1, "mrr": 100.0, "named": 0.0, "acc@1": 100.0, "recall@1": 100.0}
    assert bench.main(["--tasks", str(tasks), "--mirrors", str(tmp_path / "none")]) == 2
