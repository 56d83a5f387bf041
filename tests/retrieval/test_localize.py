"""`devloop localize` on a tiny mirror made here: the tree at base_commit (read with git plumbing, not a
checkout), gold files and functions from the patch, Acc/Recall@k and MRR, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devloop.retrieval import gittree
from devloop.retrieval.definitions import extract
from devloop.retrieval.localize import gold_definitions, measure, names_a_file, summarise, touched_lines

COOKIES = '''"""Cookies."""


class CookieJar:
    """Cookies kept between requests."""

    def add(self, name, value):
        self.items[name] = value

    def parse_cookie_header(self, line):
        """Split a Cookie header into pairs."""
        return [pair.split("=") for pair in line.split(";")]


def helper():
    return CookieJar()
'''
MATHS = "def add(a, b):\n    return a + b\n"
PATCH = """diff --git a/pkg/cookies.py b/pkg/cookies.py
index 1111111..2222222 100644
--- a/pkg/cookies.py
+++ b/pkg/cookies.py
@@ -10,4 +10,4 @@ class CookieJar:
     def parse_cookie_header(self, line):
         \"\"\"Split a Cookie header into pairs.\"\"\"
-        return [pair.split("=") for pair in line.split(";")]
+        return [pair.strip().split("=", 1) for pair in line.split(";")]
"""  # fmt: skip


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("loc")
    work = root / "work"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "cookies.py").write_text(COOKIES)
    (work / "pkg" / "maths.py").write_text(MATHS)
    (work / "README.md").write_text("A cookie and maths library.\n")
    os.symlink("pkg/cookies.py", work / "link.py")  # a link in the tree is never read
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # After the base commit: a file that would match the issue best, which must not be seen.
    (work / "pkg" / "later.py").write_text("def cookie_header_split_pairs(): pass\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "later"], check=True)
    out = root / "mirrors"
    out.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(out / "o+r" / "repo")], check=True)
    return out, base


def _tasks(tmp_path: Path, base: str, **override: str) -> Path:
    record = {
        "instance_id": "o__r-1",
        "repo": "o/r",
        "base_commit": base,
        "patch": PATCH,
        "test_patch": "diff --git a/tests/test_x.py b/tests/test_x.py\n",
        "problem_statement": "CookieJar.parse_cookie_header keeps spaces when it splits the header pairs",
        **override,
    }
    other = {**record, "instance_id": "x__y-1", "repo": "x/y"}  # no mirror: skipped
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([record, other]))
    return path


def _localize(*args: str) -> subprocess.CompletedProcess[str]:
    from cli_inprocess import run_devloop

    return run_devloop(["localize", *args], env={**os.environ, "COLUMNS": "200"})


def test_touched_lines_and_gold_functions() -> None:
    touched = touched_lines(PATCH)
    assert touched == {"pkg/cookies.py": {12}}
    defs = extract("pkg/cookies.py", COOKIES.encode())
    assert gold_definitions(defs, touched["pkg/cookies.py"]) == {"CookieJar.parse_cookie_header"}
    assert gold_definitions(defs, {1}) == set()  # the module docstring is in no definition
    added = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -3,2 +3,3 @@\n x\n+y\n z\n"
    assert touched_lines(added) == {"a.py": {3, 4}}  # the lines on either side of the insertion


def test_measures() -> None:
    figures = measure(["a", "b", "c"], {"b", "c"}, [1, 2, 3], "")
    assert figures == {"mrr": 0.5, "acc@1": 0.0, "recall@1": 0.0, "acc@2": 0.0, "recall@2": 0.5,
                       "acc@3": 1.0, "recall@3": 1.0}  # fmt: skip
    assert summarise([figures, measure(["b"], {"b"}, [1], "")])["acc@1"] == 50.0
    assert names_a_file("see src/flask/app.py line 3", "src/flask/app.py")
    assert names_a_file("in flask.app the", "src/flask/app.py")  # a src layout's importable module
    assert not names_a_file("in flask.appctx the", "src/flask/app.py")  # a module as a whole name
    assert names_a_file("_pytest.python.Function fails", "src/_pytest/python.py")
    assert names_a_file("the sympy.core.basic module", "sympy/core/basic.py")
    assert not names_a_file("an __init__.py somewhere", "pkg/__init__.py")


def test_tree_at_base_commit_is_read_with_plumbing(mirrors: tuple[Path, str]) -> None:
    root, base = mirrors
    files = gittree.listing(root / "o+r" / "repo", base)
    assert set(files) == {"pkg/cookies.py", "pkg/maths.py", "README.md"}  # no link, nothing later
    data = gittree.read_files(root / "o+r" / "repo", files, ["pkg/maths.py"])
    assert data == {"pkg/maths.py": MATHS.encode()}
    with pytest.raises(gittree.GitTreeError, match="not a full commit id"):
        gittree.listing(root / "o+r" / "repo", "--output=/tmp/x")


def test_localize_command_reports_files_and_functions(mirrors: tuple[Path, str], tmp_path: Path) -> None:
    root, base = mirrors
    tasks = _tasks(tmp_path, base)
    args = ["--tasks", str(tasks), "--mirrors", str(root), "--k", "1,3", "--cache-dir", str(tmp_path / "c")]
    proc = _localize(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 1 and report["skipped"] == ["x__y-1"]
    assert report["named_share"] == 0.0  # the issue names a class, not the file
    assert list(report["methods"]) == ["bm25", "src:bm25+map", "default"]
    for method in report["methods"]:
        overall = report["methods"][method]["overall"]
        assert overall["acc@1"] == 100.0 and overall["mrr"] == 100.0, (method, overall)
    assert "[1/1] o__r-1: file Acc@1 bm25=hit src:bm25+map=hit default=hit" in proc.stderr
    fused = report["methods"]["default"]["overall"]
    assert fused["fn_acc@1"] == 100.0 and fused["n_fn"] == 1
    inst = report["instances"][0]
    assert inst["gold_files"] == ["pkg/cookies.py"]
    assert inst["gold_functions"] == ["pkg/cookies.py::CookieJar.parse_cookie_header"]
    assert "pkg/later.py" not in inst["top_files"]["bm25"]
    assert [a["value"] for a in report["anchors"]] == ["29.6", "38.7", "52.6", "77.7"]
    human = _localize(*args, "--methods", "bm25,default")
    assert human.returncode == 0, human.stderr
    assert "default = src:bm25+map+defs (%" in human.stdout
    assert "SweRank (Lite) BM25 file Acc@1: 38.7" in human.stdout and "o/r" in human.stdout
    assert (tmp_path / "c").is_dir()  # the cache was used
    helped = _localize("--help")
    assert helped.returncode == 0 and "--mirrors" in helped.stdout, helped.stderr


def test_localize_bad_input_is_one_line(mirrors: tuple[Path, str], tmp_path: Path) -> None:
    root, base = mirrors
    tasks = _tasks(tmp_path, base)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instance_id": "a", "repo": "o/r", "base_commit": base}) + "\n")
    cases = [
        (["--tasks", str(bad), "--mirrors", str(root)], "line 1 has no string field 'patch'"),
        (["--tasks", str(tasks), "--mirrors", str(tmp_path / "none")], "not a directory"),
        (["--tasks", str(tasks), "--mirrors", str(root), "--k", "x"], "not comma-separated"),
        (["--tasks", str(tasks), "--mirrors", str(root), "--methods", "bm26"], "unknown ranker"),
        (["--tasks", str(tasks), "--mirrors", str(root), "--instances", "nope"], "not in"),
        (["--tasks", str(tasks), "--mirrors", str(root), "--repos", "x/y"], "no record's repository"),
    ]
    for args, message in cases:
        proc = _localize(*args, "--no-cache")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    unknown_commit = _tasks(tmp_path, "f" * 40)
    proc = _localize("--tasks", str(unknown_commit), "--mirrors", str(root), "--no-cache")
    assert proc.returncode == 2 and "skipped o__r-1: git ls-tree" in proc.stderr


def _call(name: str, **arguments: object) -> dict[str, object]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": name, "arguments": arguments}}],
    }


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_localize_with_a_model_scores_the_files_the_agent_touched(
    mirrors: tuple[Path, str], tmp_path: Path
) -> None:
    from cli_inprocess import run_devloop

    from devloop.models.scripted_server import ScriptedServer

    root, base = mirrors
    before = _snapshot(root)
    mirror = root / "o+r" / "repo"
    from devloop.runtime.probe import resolve_sandbox

    # Without a sandbox here the agent's commands run unconfined, so it tries the mirror only in one.
    hostile = f"touch {mirror}/HEAD.model 2>/dev/null; " if resolve_sandbox(None)[0] == "bwrap" else ""
    script = [
        # Read pkg/maths.py through the shell, and try to write into the mirror (hidden by the sandbox).
        _call("execute_bash", command=f"cat pkg/maths.py; {hostile}true"),
        _call("str_replace_editor", command="view", path="pkg/cookies.py"),
        _call(
            "str_replace_editor",
            command="str_replace",
            path="pkg/cookies.py",
            old_str='pair.split("=")',
            new_str='pair.strip().split("=", 1)',
        ),
        _call("str_replace_editor", command="view", path="/etc/passwd"),  # outside the tree: not counted
        _call("finish", message="done"),
    ]
    runs = tmp_path / "runs"
    with ScriptedServer(script) as server:
        proc = run_devloop(
            [
                "localize",
                "--tasks",
                str(_tasks(tmp_path, base)),
                "--mirrors",
                str(root),
                "--k",
                "1,3",
                "--no-cache",
                "--json",
                "--model",
                "openai/scripted",
                "--base-url",
                server.url,
                "--runs",
                str(runs),
            ],  # fmt: skip
            env={"OPENAI_API_KEY": "x"},
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["instances"][0]["top_files"]["agent"] == ["pkg/maths.py", "pkg/cookies.py"]
    agent = report["methods"]["agent"]["overall"]
    assert agent["acc@1"] == 0.0 and agent["acc@3"] == 100.0 and agent["mrr"] == 50.0, agent
    assert agent["fn_acc@1"] == 100.0  # it edited CookieJar.parse_cookie_header, the gold function
    assert report["methods"]["default"]["overall"]["acc@1"] == 100.0  # retrieval measured beside it
    assert (runs / "o__r-1" / "trajectory.jsonl").is_file() and report["runs"] == str(runs)
    assert _snapshot(root) == before  # the model's writes never reach the mirror


def test_touched_files_order_and_hostile_events() -> None:
    from devloop.retrieval.localize import touched_files

    known = {"a.py", "pkg/b.py", "pkg/c.py"}
    events = [
        {"type": "start", "workspace": "/tmp/ws/r"},
        "not an event",
        {"type": "step", "calls": [{"name": "str_replace_editor", "arguments": {"command": "view", "path": "/tmp/ws/r/pkg/b.py"}}]},
        {"type": "step", "calls": [{"name": "execute_bash", "arguments": {"command": "grep -n x ../r/a.py 'unterminated"}},
                                   {"name": "execute_bash", "arguments": {"command": "x=$(cat ./a.py)"}},
                                   {"name": "str_replace_editor", "arguments": "not a dict"},
                                   {"name": "str_replace_editor", "arguments": {"command": "view", "path": "/etc/passwd"}}]},
        {"type": "step", "calls": [], "patch": "diff --git a/pkg/c.py b/pkg/c.py\n--- a/pkg/c.py\n"},
        {"type": "step", "calls": [{"name": "str_replace_editor", "arguments": {"command": "create", "path": "new.py"}}]},
    ]  # fmt: skip
    assert touched_files(events, known) == ["pkg/b.py", "a.py", "pkg/c.py", "new.py"]


def test_plumbing_runs_nothing_a_mirror_configures(tmp_path: Path) -> None:
    """A mirror's own config cannot make the tree reading run a command or see another tree: no
    fsmonitor, no lazy fetch of a missing blob (through a promisor remote whose upload-pack is a
    script), no replace ref standing in for the commit."""
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    work = tmp_path / "m"
    work.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(work)]
    (work / "a.py").write_text("def kept(): pass\n")
    (work / "gone.py").write_text("def missing_blob(): pass\n")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (work / "a.py").write_text("def replaced(): pass\n")
    subprocess.run([*git, "commit", "-qam", "other"], check=True)
    other = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run([*git, "replace", base, other], check=True)  # `base` would read as `other`
    gone = subprocess.run([*git, "rev-parse", f"{base}:gone.py"], capture_output=True, text=True, check=True)
    oid = gone.stdout.strip()
    (work / ".git" / "objects" / oid[:2] / oid[2:]).unlink()  # a blob only a lazy fetch could bring
    for key, value in [
        ("core.fsmonitor", str(script)),
        ("core.hooksPath", str(tmp_path)),
        ("extensions.partialClone", "origin"),
        ("core.repositoryformatversion", "1"),
        ("remote.origin.url", str(work)),
        ("remote.origin.promisor", "true"),
        ("remote.origin.uploadpack", str(script)),
    ]:
        subprocess.run([*git, "config", key, value], check=True)
    git_dir = work / ".git"
    files = gittree.listing(git_dir, base)
    data = gittree.read_files(git_dir, files, sorted(files))
    assert data == {"a.py": b"def kept(): pass\n"}  # the base commit's own blob; the missing one left out
    assert not marker.exists()
