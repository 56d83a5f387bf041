"""One chat turn without a terminal: `devloop chat -p PROMPT`."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.chat.checkpoint import Checkpoints, store_root
from devloop.chat.sessions import ChatSession, Turn

if TYPE_CHECKING:  # the agent, the openai client and the policy load when the first turn runs, not
    # before the first prompt (chat starts in well under a second)
    from devloop.agent import StepInfo
    from devloop.config import RunSettings
    from devloop.policy import Rule
    from devloop.session import RunResult


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
    context: str = "",
    images: list[dict[str, Any]] | None = None,
    interactive: bool = False,
    on_warning: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Checkpoint the tree, then let the agent work on it in place (commands in the sandbox).

    `context`: project instructions, repository state and attached files, put before the request.
    `interactive`: a person answers `ask` (chat's own rules: every command not already approved, and
    every edit, for its diff preview); otherwise only the policy's own ask rules reach `ask`.
    `cancel`: set from another thread (Ctrl-C in the chat), it ends the turn at once; the turn is saved
    as `interrupted`, with the reply's text so far, and its checkpoint still takes its edits back."""
    from devloop.chat.approvals import (
        devloop_dir_problem,
        file_bytes,
        keep_file,
        keep_policy_file,
        policy_bytes,
    )
    from devloop.chat.streaming import StreamingModel
    from devloop.policy import PolicyError, load_policy
    from devloop.runtime.identity import take_back
    from devloop.session import Session

    if problem := devloop_dir_problem(repo):  # checked again: a turn without a sandbox can make one
        raise ValueError(problem)
    n = len(session.turns) + 1
    turn = Turn(n, prompt, checkpoints.save(n), run_dir=str(session.path / f"turn-{n}"))
    agent = Session.prepare(settings)
    if (note := auto_compact(session, settings, agent)) and on_warning:
        on_warning(note)
    task = f"{session.history()}\n\nNow the user asks: {prompt}" if session.turns else prompt
    task = f"{context}\n\n{task}" if context else task
    try:  # the repository's own rules, wherever chat was started from
        agent.policy = load_policy(repo, extra_files=agent.groups.tools.policy)
    except PolicyError as e:
        raise ValueError(str(e)) from None
    agent.model = StreamingModel.of(agent.model, on_text, images, cancel)  # replies shown as they arrive
    agent.policy.rules += chat_rules(interactive)
    ask = guard_edits(repo, ask, interactive)
    # The repository's own .git is read-only in the sandbox: a hook or config the model planted there
    # would run in the user's next git command on the host. The tree is the user's: when devloop runs as
    # root the sandbox gets it for the turn (identity.hand_over) and it is handed back to its owner after.
    owner = repo.stat()
    policy_before = policy_bytes(repo)
    settings_file = repo / "devloop.toml"
    settings_before = file_bytes(settings_file)
    made = held_dir(repo / ".devloop") if agent.sandbox in ("bwrap", "docker") else None
    try:
        result = agent.run(repo, task, Path(turn.run_dir), in_place=True, on_step=on_step, ask=ask,
                           hide=[checkpoints.gitdir.parent], protect=[repo / ".git", repo / ".devloop", settings_file],
                           cancel=cancel)  # fmt: skip
    finally:
        if made is not None:
            release_dir(made)
        take_back(repo, owner.st_uid, owner.st_gid)
        if (warning := keep_policy_file(repo, checkpoints.gitdir.parent, policy_before)) and on_warning:
            on_warning(warning)
        if (warning := keep_file(settings_file, settings_before)) and on_warning:
            on_warning(warning)
    turn.exit_status, turn.message = result.exit_status, result.reason
    partial = "".join(getattr(agent.model, "partial", None) or []).strip()
    if result.exit_status == "interrupted" and partial:
        turn.message = f"{result.reason}; the reply so far: {partial[-4000:]}"
    turn.prompt_tokens, turn.completion_tokens = result.prompt_tokens, result.completion_tokens
    session.turns.append(turn)
    session.save()
    return result


def held_dir(path: Path) -> Path | None:
    """Make the missing directory `path` (empty) so that the sandbox can bind it read-only: a path that
    does not exist cannot be bound, and the model could then create it (.devloop/commands/NAME.md, a
    prompt the user may later run as their own). The directory made, or None when `path` was there."""
    try:
        path.mkdir(mode=0o755)
    except FileExistsError:
        return None
    return path


def release_dir(path: Path) -> None:
    """Remove the directory held_dir made, unless the user put something there meanwhile (approvals
    saved during the turn): the sandbox saw it read-only, so nothing in it is the model's."""
    with contextlib.suppress(OSError):
        path.rmdir()


HISTORY_SHARE = 0.5
"""With condense on: the earlier turns are compacted once they pass this share of `condense_at` x the
window (the turn itself needs the rest: the system prompt, tools, its own steps)."""


def auto_compact(session: ChatSession, settings: RunSettings, agent: Any) -> str:
    """Compact the earlier turns before a turn when they fill too much of the model's context window (the
    `context_window` setting, else what the server lists); a line to show, or "". A failed summary leaves
    the history as it was: the agent loop's own condensing still recovers a request that is too long."""
    from devloop.chat.compaction import compact_session
    from devloop.chat.slash import context_tokens
    from devloop.condense import context_window_of

    if not settings.condense or len(session.turns) - session.summarised < 2:
        return ""
    window = settings.context_window or context_window_of(agent.model)
    if window is None or context_tokens(session.history()) <= HISTORY_SHARE * settings.condense_at * window:
        return ""
    try:
        return compact_session(session, settings, None)
    except ValueError as e:
        return f"the history is near the context window and could not be compacted: {e}"


def chat_rules(interactive: bool) -> list[Rule]:
    """Rules after the policy's own (which decide first): every editor call reaches `ask` (writes into
    .git or .devloop are refused there, and a person sees each edit's diff); in an interactive chat,
    so does every command no rule decided."""
    from devloop.policy import Rule

    rules = [Rule("ask", tool="str_replace_editor", reason="an edit", source="devloop chat")]
    if interactive:
        rules.append(Rule("ask", tool="execute_bash", mode="interactive", source="devloop chat",
                          reason="devloop chat asks before running a command"))  # fmt: skip
    return rules


def guard_edits(
    repo: Path, ask: Callable[[Any, Any], bool] | None, interactive: bool
) -> Callable[[Any, Any], bool]:
    """`ask` with editor calls checked first: a write into the repository's .git (a config or hook there
    would run in the user's next git command on the host) or into .devloop (approvals, commands) is
    refused; a view, or an edit with no one to preview it (headless), runs."""
    from devloop.chat.preview import guarded, propose
    from devloop.safefs import EscapeError

    def checked(call: Any, rule: Any) -> bool:
        if call.name == "str_replace_editor" and getattr(rule, "source", "") == "devloop chat":
            try:
                proposed = propose(call, repo)
            except EscapeError:
                return False
            if proposed is not None and guarded(proposed.rel):
                return False
            if proposed is None or not interactive or ask is None:
                return True
        return ask(call, rule) if ask is not None else False

    return checked


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
