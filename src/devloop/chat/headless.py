"""One chat turn without a terminal: `devloop chat -p PROMPT`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devloop.agent import StepInfo
from devloop.chat.checkpoint import Checkpoints, store_root
from devloop.chat.sessions import ChatSession, Turn
from devloop.chat.streaming import StreamingModel
from devloop.config import RunSettings
from devloop.runtime.identity import take_back
from devloop.session import RunResult, Session


def open_session(repo: Path, cont: bool, resume: str | None) -> tuple[ChatSession, Checkpoints]:
    """A new session, the last one (`cont`) or `resume`'s; raises ValueError naming what is missing."""
    from devloop.chat.sessions import list_sessions

    store = store_root(repo)
    if cont or resume:
        ids = list_sessions(store)
        sid = resume or (ids[-1] if ids else None)
        if sid is None:
            raise ValueError(f"--continue: no earlier chat session in {repo}")
        if sid not in ids:
            raise ValueError(f"--resume {sid}: no such session in {repo} (known: {', '.join(ids) or 'none'})")
        session = ChatSession.load(store, sid)
    else:
        store.mkdir(parents=True, exist_ok=True)
        session = ChatSession.new(store, repo)
    return session, Checkpoints(repo, store / "git", session.id)


def run_turn(
    repo: Path,
    prompt: str,
    settings: RunSettings,
    session: ChatSession,
    checkpoints: Checkpoints,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    ask: Callable[[Any, Any], bool] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> RunResult:
    """Checkpoint the tree, then let the agent work on it in place (commands in the sandbox)."""
    n = len(session.turns) + 1
    turn = Turn(n, prompt, checkpoints.save(n), run_dir=str(session.path / f"turn-{n}"))
    task = f"{session.history()}\n\nNow the user asks: {prompt}" if session.turns else prompt
    agent = Session.prepare(settings)
    agent.model = StreamingModel.of(agent.model, on_text)  # replies shown as they arrive
    # The repository's own .git is read-only in the sandbox: a hook or config the model planted there
    # would run in the user's next git command on the host. The tree is the user's: when devloop runs as
    # root the sandbox gets it for the turn (identity.hand_over) and it is handed back to its owner after.
    owner = repo.stat()
    try:
        result = agent.run(repo, task, Path(turn.run_dir), in_place=True, on_step=on_step, ask=ask,
                           hide=[checkpoints.gitdir.parent], protect=[repo / ".git"])  # fmt: skip
    finally:
        take_back(repo, owner.st_uid, owner.st_gid)
    turn.exit_status, turn.message = result.exit_status, result.reason
    turn.prompt_tokens, turn.completion_tokens = result.prompt_tokens, result.completion_tokens
    session.turns.append(turn)
    session.save()
    return result


def step_event(info: StepInfo) -> dict[str, Any]:
    return {
        "type": "step",
        "step": info.step,
        "calls": [{"name": c.name, "arguments": c.arguments} for c in info.calls],
        "observations": [o.text for o in info.observations],
        "format_error": info.format_error,
        "total_tokens": info.total_tokens,
    }


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def final_json(result: RunResult, session: ChatSession) -> dict[str, Any]:
    return {
        "type": "result",
        "session": session.id,
        "turn": len(session.turns),
        "checkpoint": session.turns[-1].checkpoint if session.turns else "",
        "exit_status": result.exit_status,
        "message": result.reason,
        "patch": result.patch,
        "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
    }
