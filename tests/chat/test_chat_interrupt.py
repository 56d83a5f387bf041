"""A turn interrupted from another thread (what Ctrl-C in the chat does): the command running in the
sandbox is stopped with its processes, the turn is saved as interrupted, and its checkpoint undoes it."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from devloop.chat.headless import open_session, run_turn
from devloop.config import load_settings
from devloop.models.scripted_server import ScriptedServer

from .test_chat_terminal import sleepers


@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_cancel_stops_a_running_command_and_saves_the_turn(repo: Path, replies, sandbox: str) -> None:
    if sandbox == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    tag = f"31338.{5 if sandbox == 'none' else 6}"
    script = [
        replies.bash(f"echo changed > a.py; (sleep {tag}; echo x) & sleep {tag}"),
        replies.finish("never"),
    ]
    with ScriptedServer(script) as server:
        settings = load_settings(model="openai/m", base_url=server.url, sandbox=sandbox)
        session, checkpoints = open_session(repo, False, None)
        cancel = threading.Event()

        def press_ctrl_c() -> None:
            deadline = time.monotonic() + 20
            while len(sleepers(tag)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            cancel.set()

        threading.Thread(target=press_ctrl_c, daemon=True).start()
        t0 = time.monotonic()
        result = run_turn(repo, "go", settings, session, checkpoints, ask=lambda *_: True, cancel=cancel)
        took = time.monotonic() - t0
        asked = len(server.requests)
    assert result.exit_status == "interrupted" and took < 15, (result.reason, took)
    assert asked == 1  # the finish reply was never asked for
    assert not sleepers(tag)  # the command and its background job are gone
    assert [t.exit_status for t in session.turns] == ["interrupted"]
    assert (repo / "a.py").read_text() == "changed\n"
    checkpoints.restore(1)  # the checkpoint before the turn takes its edit back
    assert (repo / "a.py").read_text() == "x = 1\n"
