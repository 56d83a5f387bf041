"""`devloop chat` in a real terminal: a tmux pane, keys typed with send-keys, the screen read back."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devloop.workspace import git

TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (.ci/run installs it)")
def test_a_turn_then_rewind_then_exit_in_a_tmux_pane(tmp_path: Path, replies) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "init", "-q", "-b", "main")
    script = tmp_path / "model.jsonl"
    turn = [replies.replace("a.py", "x = 1", "x = 2"), replies.finish("x is now 2")]
    script.write_text("".join(json.dumps(m) + "\n" for m in turn))
    rc = tmp_path / "rc"
    argv = [sys.executable, "-m", "devloop", "chat", "--repo", str(repo), "--model", f"scripted/{script}",
            "--sandbox", "none"]  # fmt: skip
    sock = Path(tempfile.mkdtemp(prefix="dl-chat-")) / "s"  # short: a socket path has a length limit
    tmux = [str(TMUX), "-S", str(sock), "-f", "/dev/null"]
    env = {**os.environ, "TERM": "xterm-256color", "DEVLOOP_CHAT_HOME": str(tmp_path / "home")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*tmux, *args], capture_output=True, text=True, env=env, check=check)

    def screen() -> str:
        return run("capture-pane", "-p", "-J", "-t", "chat").stdout

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in screen():
            assert not rc.exists(), f"chat ended before {text!r}:\n{screen()}"
            assert time.monotonic() < deadline, f"no {text!r} on the screen:\n{screen()}"
            time.sleep(0.1)

    run("new-session", "-d", "-s", "chat", "-x", "160", "-y", "40",
        f"{shlex.join(argv)}; echo $? > {shlex.quote(str(rc))}")  # fmt: skip
    try:
        wait_for("/rewind N, /commit [MESSAGE], /exit")
        run("send-keys", "-t", "chat", "make x 2", "Enter")
        wait_for("[finished · turn 1]")
        assert "x is now 2" in screen() and (repo / "a.py").read_text() == "x = 2\n"
        run("send-keys", "-t", "chat", "/rewind 1", "Enter")
        wait_for("rewound to before turn 1")
        assert (repo / "a.py").read_text() == "x = 1\n"
        run("send-keys", "-t", "chat", "/exit", "Enter")
        deadline = time.monotonic() + 30
        while run("has-session", "-t", "chat", check=False).returncode == 0:
            assert time.monotonic() < deadline, f"the session outlived /exit:\n{screen()}"
            time.sleep(0.1)
    finally:
        run("kill-server", check=False)
        shutil.rmtree(sock.parent, ignore_errors=True)
    assert rc.read_text().strip() == "0"
