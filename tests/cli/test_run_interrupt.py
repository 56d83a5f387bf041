"""`devloop run`: a Ctrl-C that Python dropped (it landed in an at-fork callback) still ends the run."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from devloop.cli.interrupts import latched_interrupt
from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer
from devloop.session import run_agent
from devloop.workspace import git


def test_a_dropped_ctrl_c_sets_the_runs_cancel_and_the_run_ends_interrupted(
    tmp_path: Path, replies: Any
) -> None:
    cancel = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with latched_interrupt(cancel):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # dropped, as an at-fork callback would
        assert cancel.is_set()
    assert signal.getsignal(signal.SIGINT) is before
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("a\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        git(repo, *args)
    script = [replies.call("execute_bash", 0, command="echo one"), replies.finish()]
    with ScriptedServer(script) as server:
        settings = load_settings(model="openai/test", base_url=server.url, sandbox="none")
        result = run_agent(repo, "anything", settings, tmp_path / "out", cancel=cancel)
    assert result.exit_status == "interrupted" and result.steps <= 1
    assert (tmp_path / "out" / "result.json").is_file()
