"""The command policy's "ask" rules: in a real terminal (a tmux pane) `devloop run` asks y / n / always;
with stdin not a terminal they deny, as in every batch run."""

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
from typing import Any

import pytest

from devloop.demo import make_demo_repo
from devloop.trajectory import read_trajectory

TMUX = shutil.which("tmux")
PROMPT = "run it? [y]es / [n]o / [a]lways for this rule:"
POLICY = """
[[rule]]
tool = "execute_bash"
pattern = "approve-me"
action = "ask"
reason = "this command needs a person's yes"
"""


def call(i: int, command: str) -> dict[str, Any]:
    args = {"command": command} if command else {"message": "done"}
    name = "execute_bash" if command else "finish"
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ],
    }


COMMANDS = [
    "echo refused > refused.txt  # approve-me",  # answered n
    "echo once > once.txt  # approve-me",  # answered y
    "echo always > always.txt  # approve-me",  # answered a
    "echo again > again.txt  # approve-me",  # not asked: "always" covers the rule for the rest of the run
    "echo free > free.txt",  # no rule matches
]


def setup(tmp_path: Path) -> tuple[Path, list[str], Path]:
    repo = make_demo_repo(tmp_path / "statkit")
    script = tmp_path / "ask.jsonl"
    script.write_text("".join(json.dumps(call(i, c)) + "\n" for i, c in enumerate([*COMMANDS, ""])))
    (tmp_path / "policy.toml").write_text(POLICY)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "devloop", "run", "--repo", str(repo), "--issue", "x",
            "--model", f"scripted/{script}", "--policy", str(tmp_path / "policy.toml"), "--output", str(out)]  # fmt: skip
    return repo, argv, out


def observations(out: Path) -> list[dict[str, Any]]:
    steps = [e for e in read_trajectory(out / "trajectory.jsonl") if e["type"] == "step"]
    return [o for e in steps for o in e["observations"]]


class Pane:
    """A tmux session on a private server, running one shell command in a real terminal."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dl-tmux-"))  # a short path: a socket name has a limit
        self.tmux = [str(TMUX), "-S", str(self.dir / "s"), "-f", "/dev/null"]
        self.env = env
        self._tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "60", command)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([*self.tmux, *args], capture_output=True, text=True, env=self.env, check=True)
        return done.stdout

    def text(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", "t")

    def wait_for(self, what: str, count: int, done: Path, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(what) < count:
            assert not done.exists(), f"the run ended before prompt {count}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no prompt {count} in time:\n{self.text()}"
            time.sleep(0.2)

    def answer(self, key: str) -> None:
        self._tmux("send-keys", "-t", "t", key, "Enter")

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, env=self.env, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_ask_rules_ask_in_a_terminal_yes_no_always(tmp_path: Path) -> None:
    _, argv, out = setup(tmp_path)
    rc = tmp_path / "rc"
    log = tmp_path / "stderr.log"
    shell = f"{shlex.join(argv)} 2>{shlex.quote(str(log))}; echo $? > {shlex.quote(str(rc))}; sleep 600"
    pane = Pane(shell, env={**os.environ, "TERM": "xterm-256color"})
    try:
        for n, key in enumerate(["n", "y", "a"], 1):
            pane.wait_for(PROMPT, n, rc)
            pane.answer(key)
        deadline = time.monotonic() + 180
        while not rc.exists() or not rc.read_text().strip():
            assert time.monotonic() < deadline, pane.text()
            time.sleep(0.2)
        screen = pane.text()
    finally:
        pane.close()
    assert rc.read_text().strip() == "0", screen + log.read_text()
    assert screen.count(PROMPT) == 3, screen  # the 4th matching call was covered by "always"
    assert "this command needs a person's yes" in screen and f"{tmp_path / 'policy.toml'}:2" in screen
    assert "$ echo refused > refused.txt  # approve-me" in screen
    obs = observations(out)
    assert "the user declined" in obs[0]["text"] and obs[0]["is_error"]
    for o in obs[1:4]:
        assert not o["is_error"] and "approved" in o["meta"]["policy"]["reason"]
    patch = (out / "patch.diff").read_text()
    for name in ("once", "always", "again", "free"):
        assert f"+{name}" in patch
    assert "refused" not in patch


def test_ask_rules_deny_without_a_terminal(tmp_path: Path) -> None:
    _, argv, out = setup(tmp_path)
    proc = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert PROMPT not in proc.stdout
    obs = observations(out)
    for o in obs[:4]:
        assert o["is_error"] and "this is a batch run" in o["text"]
    patch = (out / "patch.diff").read_text()
    assert "+free" in patch and "once" not in patch and "always" not in patch
