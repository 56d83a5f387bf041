"""A plain line loop for `devloop chat` without -p: each line a turn; /rewind N, /commit and /exit.

A first step towards the interactive mode: no line editing or approvals prompt yet (the policy's "ask"
rules are answered by the project's approvals, as with -p)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devloop.chat.checkpoint import Checkpoints
from devloop.chat.headless import run_turn
from devloop.chat.sessions import ChatSession
from devloop.config import RunSettings


def rewind(session: ChatSession, checkpoints: Checkpoints, turn: int) -> str:
    """Files and conversation as they were before `turn`."""
    if not 1 <= turn <= len(session.turns):
        return f"/rewind: no turn {turn} (turns 1-{len(session.turns)})"
    checkpoints.restore(turn)
    del session.turns[turn - 1 :]
    session.save()
    return f"rewound to before turn {turn}"


def commit_now(repo: Path, checkpoints: Checkpoints, message: str, turns: int) -> str:
    from devloop.chat.commit import commit
    from devloop.workspace import WorkspaceError

    try:
        return commit(repo, checkpoints.gitdir, message or f"devloop chat: {turns} turn(s)")
    except WorkspaceError as e:
        return str(e)


def loop(repo: Path, settings: RunSettings, session: ChatSession, checkpoints: Checkpoints,
         read: Callable[[], str], say: Callable[[str], None], ask: Any) -> None:  # fmt: skip
    while True:
        try:
            line = read().strip()
        except EOFError:
            return
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line.startswith("/rewind"):
            arg = line.split()[1:] or [str(len(session.turns))]
            say(
                rewind(session, checkpoints, int(arg[0]))
                if arg[0].isdigit()
                else "/rewind N: N a turn number"
            )
            continue
        if line.split()[0] == "/commit":
            say(commit_now(repo, checkpoints, line.removeprefix("/commit").strip(), len(session.turns)))
            continue
        if line.startswith("/"):
            say(f"{line.split()[0]}: not a command here (/rewind N, /commit [MESSAGE], /exit)")
            continue
        result = run_turn(repo, line, settings, session, checkpoints, ask=ask,
                          on_text=lambda d: None)  # fmt: skip
        say(result.reason)
        say(f"[{result.exit_status} · turn {len(session.turns)}]")
