"""`devloop chat -p`: in place on the user's tree, checkpointed on a private ref, sessions resumed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devloop.chat.checkpoint import Checkpoints
from devloop.cli import app
from devloop.models.scripted_server import ScriptedServer
from devloop.workspace import git


def chat(server: ScriptedServer, repo: Path, *args: str) -> tuple[int, str]:
    argv = ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url", server.url, "--sandbox", "none"]
    res = CliRunner().invoke(app, [*argv, *args])
    return res.exit_code, res.stdout


def test_json_output_edits_in_place_and_leaves_head_and_index(repo: Path, replies) -> None:
    head, index = git(repo, "rev-parse", "HEAD"), (repo / ".git" / "index").read_bytes()
    script = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("set x to 2")]
    with ScriptedServer(script) as server:
        code, out = chat(server, repo, "-p", "make x 2", "--output", "json")
    assert code == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["exit_status"] == "finished" and result["message"] == "set x to 2"
    assert "+x = 2" in result["patch"] and result["tokens"]["prompt"] > 0
    assert (repo / "a.py").read_text() == "x = 2\n"  # in place
    assert git(repo, "rev-parse", "HEAD") == head and (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "for-each-ref").count("refs/") == 1  # only main: checkpoints live outside .git


def test_stream_emits_one_event_per_step_then_the_result(repo: Path, replies) -> None:
    script = [replies.bash("echo hi"), replies.finish("ok")]
    with ScriptedServer(script) as server:
        code, out = chat(server, repo, "-p", "say hi", "--output", "stream")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["type"] for e in events] == ["step", "step", "result"]
    assert events[0]["calls"][0]["name"] == "execute_bash" and "hi" in events[0]["observations"][0]


def test_a_limit_exits_1_and_continue_carries_the_conversation(repo: Path, replies) -> None:
    with ScriptedServer([replies.bash("true"), replies.bash("true")]) as server:
        code, out = chat(server, repo, "-p", "loop", "--max-turns", "1", "--output", "json")
    assert code == 1 and json.loads(out.splitlines()[-1])["exit_status"] != "finished"
    with ScriptedServer([replies.finish("second")]) as server:
        code, out = chat(server, repo, "-p", "again", "--continue", "--output", "json")
        task = server.requests[0]["messages"][-1]["content"]
    assert code == 0 and json.loads(out.splitlines()[-1])["turn"] == 2
    assert "The user asked: loop" in task and "Now the user asks: again" in task


def test_resume_of_an_unknown_session_is_one_line_exit_2(repo: Path) -> None:
    res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "-p", "x",
                                   "--resume", "nope"])  # fmt: skip
    assert res.exit_code == 2 and "--resume nope: no such session" in res.output
    assert "Traceback" not in res.output


def test_restore_puts_files_back_and_removes_new_ones(repo: Path, tmp_path: Path) -> None:
    cps = Checkpoints(repo, tmp_path / "cp.git", "s1")
    cps.save(1)
    (repo / "a.py").write_text("broken\n")
    (repo / "new.txt").write_text("new\n")
    cps.save(2)
    (repo / "a.py").unlink()
    cps.restore(1)
    assert (repo / "a.py").read_text() == "x = 1\n" and not (repo / "new.txt").exists()
    assert cps.turns() == [1]
    assert git(repo, "status", "--porcelain") == ""


def test_the_cli_runs_as_a_process(repo: Path, replies) -> None:
    with ScriptedServer([replies.finish("hello there")]) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "devloop", "chat", "--repo", str(repo), "--model", "openai/m",
             "--base-url", server.url, "--sandbox", "none", "-p", "hi"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello there" and "finished" in proc.stderr


def test_commands_run_in_the_sandbox_on_the_tree_and_cannot_reach_the_checkpoints(
    repo: Path, tmp_path: Path, replies
) -> None:
    home = tmp_path / "home"
    script = [replies.bash(f"echo made > out.txt; ls {home} >seen.txt 2>&1; echo $? >>seen.txt"),
              replies.finish("ok")]  # fmt: skip
    with ScriptedServer(script) as server:
        res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                       server.url, "--sandbox", "bwrap", "-p", "go"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (repo / "out.txt").read_text() == "made\n"  # in place
    seen = (repo / "seen.txt").read_text()
    assert "sessions" not in seen and seen.strip().splitlines()[-1] != "0"  # the store is hidden


def test_the_repositorys_git_is_read_only_in_the_sandbox_and_the_tree_stays_the_users(
    repo: Path, replies
) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    owner = (repo.stat().st_uid, repo.stat().st_gid)
    config = (repo / ".git/config").read_text()
    plant = ("printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/pre-commit; "
             "echo '[core]' >> .git/config; echo edited > a.py; echo $?")  # fmt: skip
    with ScriptedServer([replies.bash(plant), replies.finish("ok")]) as server:
        res = CliRunner().invoke(app, ["chat", "--repo", str(repo), "--model", "openai/m", "--base-url",
                                       server.url, "--sandbox", "bwrap", "-p", "go"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (repo / "a.py").read_text() == "edited\n"  # the tree itself is writable, in place
    assert not (repo / ".git/hooks/pre-commit").exists()
    assert (repo / ".git/config").read_text() == config
    for path in (repo, repo / "a.py", repo / ".git", repo / ".git/config"):
        assert (path.stat().st_uid, path.stat().st_gid) == owner, path  # handed back after the turn


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("server_kind", ["vllm", "llamacpp", "ollama", "tool_calls_as_text"])
def test_streamed_transcripts_of_self_hosted_servers_are_executed(repo: Path, server_kind: str) -> None:
    script = json.loads((FIXTURES / f"{server_kind}.json").read_text())
    with ScriptedServer(script) as server:
        code, out = chat(server, repo, "-p", "make x 2", "--output", "stream")
        asked = server.requests[0]
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0, out
    assert asked["stream"] is True
    assert (repo / "a.py").read_text() == "x = 2\n"
    assert events[-1]["type"] == "result" and events[-1]["message"] == "x is 2"
    steps = [e for e in events if e["type"] == "step"]
    assert [c["name"] for s in steps for c in s["calls"]] == ["str_replace_editor", "finish"]
    streamed = "".join(e["delta"] for e in events if e["type"] == "text")
    if server_kind in ("vllm", "tool_calls_as_text"):  # the text arrived in pieces, each shown
        assert len([e for e in events if e["type"] == "text"]) > 1 and streamed.startswith(
            ("Editing", "I will")
        )


def test_an_ask_rule_is_answered_by_the_projects_approvals_only(repo: Path, tmp_path: Path, replies) -> None:
    from devloop.chat.approvals import Approvals, save
    from devloop.chat.checkpoint import store_root

    save(Approvals(commands=["pip install --dry-run"]), repo, store_root(repo))
    script = [replies.bash("pip install requests; touch pwned"), replies.finish("ok")]
    with ScriptedServer(script) as server:
        code, out = chat(server, repo, "-p", "install", "--output", "stream")
    step = next(e for e in map(json.loads, out.splitlines()) if e["type"] == "step")
    assert code == 0 and not (repo / "pwned").exists()  # "pip install --dry-run" does not cover it
    assert step["observations"][0].startswith("Not run: installing packages")


def test_the_line_loop_rewinds_files_and_conversation(repo: Path, replies) -> None:
    script = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("two"),
              replies.replace("a.py", "x = 2", "x = 3"), replies.finish("three"), replies.finish("fresh")]  # fmt: skip
    with ScriptedServer(script) as server:
        argv = [
            "chat",
            "--repo",
            str(repo),
            "--model",
            "openai/m",
            "--base-url",
            server.url,
            "--sandbox",
            "none",
            "--auto-edit",
        ]
        res = CliRunner().invoke(app, argv, input="make 2\nmake 3\n/rewind 2\nagain\n/exit\n")
        last_task = server.requests[-1]["messages"][1]["content"]
    assert res.exit_code == 0, res.output
    assert "rewound to before turn 2" in res.output and (repo / "a.py").read_text() == "x = 2\n"
    assert "The user asked: make 2" in last_task and "make 3" not in last_task
