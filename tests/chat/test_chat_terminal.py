"""`devloop chat` in a real terminal: a tmux pane, keys typed with send-keys, the screen read back."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from devloop.models.scripted_server import ScriptedServer
from devloop.workspace import git

from .terminal import HOLD, TMUX, Pane, SlowServer

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    (repo / "AGENTS.md").write_text("Use tabs, never spaces.\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "first commit")
    return repo


def env(tmp_path: Path) -> dict[str, str]:
    editor = tmp_path / "editor.sh"  # the user's $EDITOR, as the "edit it first" answer runs it
    editor.write_text("#!/bin/sh\nprintf 'x = 42\\n' > \"$1\"\n")
    editor.chmod(0o755)
    return {"DEVLOOP_CHAT_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "EDITOR": str(editor), "VISUAL": ""}  # fmt: skip


def test_ask_approve_for_the_project_preview_edit_rewind_then_resume(
    tmp_path: Path, repo: Path, replies
) -> None:
    (tmp_path / "outside.txt").write_text("SECRET-OUTSIDE\n")
    (repo / "leak.txt").symlink_to(tmp_path / "outside.txt")
    (repo / "shot.png").write_bytes(PNG)
    script = [
        replies.bash("echo hi"),  # asked: answered "always `echo` in this project"
        replies.replace("a.py", "x = 1", "x = 2"),  # shown as a diff: accepted
        replies.finish("x is now 2"),
        # the second session
        replies.bash("echo again"),  # approved by the project rule read back: not asked
        replies.bash("echo pwned > out.txt"),  # a redirection: the `echo` rule does not cover it: refused
        replies.replace("a.py", "x = 1", "x = 3"),  # edited in $EDITOR before it is written
        replies.finish("done"),
    ]
    with ScriptedServer(script) as server:
        args = ["--repo", str(repo), "--model", "openai/m", "--base-url", server.url, "--sandbox", "none"]
        pane = Pane(tmp_path, args, env(tmp_path))
        try:
            pane.wait_for("/help for commands")
            pane.line("make x 2")
            pane.wait_for("run it? [y/n/s/p]")
            assert "[p] always `echo` in this project" in pane.screen()
            pane.line("p")
            pane.wait_for("apply this edit? [y/n/e]")
            pane.wait_for("-x = 1\n+x = 2")
            assert (repo / "a.py").read_text() == "x = 1\n"
            pane.line("y")
            pane.wait_for("[finished · turn 1")
            assert (repo / "a.py").read_text() == "x = 2\n" and "x is now 2" in pane.screen()
            first = server.requests[0]["messages"][1]["content"]
            assert "Use tabs, never spaces." in first and "branch main" in first and "first commit" in first
            pane.line("/status")
            pane.wait_for("approvals project: echo")
            assert "AGENTS.md AGENTS.md" in pane.screen()
            pane.line("/rewind 1")
            pane.wait_for("rewound to before turn 1")
            assert (repo / "a.py").read_text() == "x = 1\n"
            pane.line("/exit")
            assert pane.exit_code() == "0"
        finally:
            pane.close()
        assert 'commands = ["echo"]' in (repo / ".devloop" / "policy.toml").read_text()

        pane = Pane(tmp_path, [*args, "--continue"], env(tmp_path))
        try:
            pane.wait_for("context ≈")  # the resumed session's history and size
            screen = pane.screen()
            assert "0 turn(s)" in screen  # /rewind 1 took the only turn back
            pane.line("now @shot.png and @leak.txt")
            pane.wait_for("run it? [y/n]")
            screen = pane.screen()
            assert "$ echo pwned > out.txt" in screen and "$ echo again" in screen  # asked only the second
            assert "@leak.txt: leads out of the repository" in screen
            pane.line("n")
            pane.wait_for("apply this edit? [y/n/e]")
            pane.line("e")
            pane.wait_for("[finished · turn 1")
            pane.line("/exit")
            assert pane.exit_code() == "0"
        finally:
            pane.close()
        body = json.dumps(server.requests)
        user = server.requests[3]["messages"][1]["content"]
    assert not (repo / "out.txt").exists() and (repo / "a.py").read_text() == "x = 42\n"
    assert isinstance(user, list) and user[1]["type"] == "image_url"
    assert user[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "SECRET-OUTSIDE" not in body


def test_a_reply_streams_as_it_arrives_and_typing_stays_live(tmp_path: Path, repo: Path) -> None:
    # the last word waits until the keystrokes are measured: the reply is still arriving meanwhile
    words = ["First line of the reply.\n", *[f"w{i} " for i in range(5)], HOLD, "LAST-WORD"]
    with SlowServer([(words, ("finish", {"message": "streamed"}))], delay=0.02) as server:
        args = ["--repo", str(repo), "--model", "openai/m", "--base-url", server.url, "--sandbox", "none"]
        pane = Pane(tmp_path, args, env(tmp_path))
        try:
            pane.wait_for("0 turn(s)")  # the bottom bar, drawn with the first prompt
            startup = time.monotonic() - pane.started
            pane.line("stream please")
            pane.wait_for("First line of the reply.")
            pane.wait_for("… w")
            assert "LAST-WORD" not in pane.screen()  # shown while the rest is still arriving
            latencies = []
            for key in "zqxv":
                t0 = time.monotonic()
                pane.send("-l", key)
                pane.wait_for(f"+ {''.join('zqxv'[: 'zqxv'.index(key) + 1])}")
                latencies.append(time.monotonic() - t0)
            assert "LAST-WORD" not in pane.screen()
            server.release.set()
            pane.wait_for("LAST-WORD")
            pane.wait_for("[finished · turn 1")
            pane.wait_for("> zqxv")  # what was typed during the turn is the next prompt's text
            pane.send("C-u")
            pane.line("/exit")
            assert pane.exit_code() == "0"
        finally:
            pane.close()
    print(f"\nstartup to first prompt {startup:.3f} s; keystroke to screen while streaming "
          f"{', '.join(f'{x * 1000:.0f}' for x in latencies)} ms")  # fmt: skip
    assert max(latencies) < 1.0


def sleepers(tag: str) -> list[int]:
    """Pids of processes whose command line holds `tag`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_ctrl_c_interrupts_a_streaming_reply_and_a_running_command_then_leaves(
    tmp_path: Path, repo: Path
) -> None:
    words = ["Looking into it.\n", *[f"p{i} " for i in range(5)], HOLD, "p150"]  # held until the end
    tag = "31337.25"  # `sleep 31337.25`: a command that would run for hours, found again by its argv
    with SlowServer([(words, ("finish", {"message": "never"})),
                     (["Running it.\n"], ("execute_bash", {"command": f"sleep {tag}"}))], delay=0.02) as server:  # fmt: skip
        args = ["--repo", str(repo), "--model", "openai/m", "--base-url", server.url, "--sandbox", "none"]
        pane = Pane(tmp_path, args, env(tmp_path))
        try:
            pane.wait_for("0 turn(s)")
            pane.line("explain")
            pane.wait_for(" p3 p4")  # the reply is streaming
            t0 = time.monotonic()
            pane.send("C-c")
            pane.wait_for("interrupted: the turn is saved")
            stopped_reply = time.monotonic() - t0
            assert "p150" not in pane.screen()
            pane.wait_for("1 turn(s)")  # the prompt is back, with the turn counted
            pane.line("run the sleeper")
            pane.wait_for("run it? [y/n/s/p]")
            pane.line("y")
            t1 = time.monotonic()
            while not sleepers(tag):
                assert time.monotonic() - t1 < 10, pane.screen()
                time.sleep(0.02)
            t0 = time.monotonic()
            pane.send("C-c")
            pane.wait_for("interrupted: the turn is saved", after=pane.screen().index("run the sleeper"))
            stopped_command = time.monotonic() - t0
            assert not sleepers(tag)  # the command's processes are gone
            pane.wait_for("2 turn(s)")
            pane.send("C-c")
            pane.wait_for("(Ctrl-C again or Ctrl-D to leave)")
            pane.send("C-c")
            assert pane.exit_code() == "0"
        finally:
            pane.close()
    session = next((tmp_path / "home").rglob("session.json"))
    turns = json.loads(session.read_text())["turns"]
    assert [t["exit_status"] for t in turns] == ["interrupted", "interrupted"]
    assert "the reply so far: Looking into it.\np0 p1 p2 p3" in turns[0]["message"]
    assert not sleepers(tag)
    print(
        f"\nCtrl-C to the prompt: a streaming reply {stopped_reply:.2f} s, a running command {stopped_command:.2f} s"
    )
    assert stopped_reply < 3 and stopped_command < 3
