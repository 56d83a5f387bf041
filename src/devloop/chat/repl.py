"""/rewind and /commit, as the interactive chat (chat.commands) runs them."""

from __future__ import annotations

from pathlib import Path

from devloop.chat.checkpoint import Checkpoints
from devloop.chat.sessions import ChatSession


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
