"""/compact: the earlier turns of a chat session replaced by a summary the model writes.

A chat turn's task carries the conversation so far as text (ChatSession.history); compaction shrinks that
preamble with the same `devloop.condense.compact` that `devloop run --condense` uses. The last turn stays
verbatim (the user's most recent request and answer are what the next one most often refers to), earlier
summaries are folded into the new one, and the session file records the summary so a resumed session
starts from it. Nothing is lost: each turn's prompt and answer stay in session.json and its run directory."""

from __future__ import annotations

from typing import Any

from devloop.chat.sessions import ChatSession

KEEP_TURNS = 1
_TASK = "A chat session between a user and a coding agent working in the user's repository."


def session_messages(session: ChatSession) -> list[dict[str, Any]]:
    """The session as a message list condense understands: the system line and a task (holding the
    previous summary, if any), then one assistant message per turn not yet summarised."""
    from devloop.condense import SUMMARY_HEADING

    task = _TASK + (f"\n\n{SUMMARY_HEADING}\n{session.summary}" if session.summary else "")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "devloop chat"},
        {"role": "user", "content": task},
    ]
    for t in session.turns:
        if t.turn > session.summarised:
            messages.append(
                {"role": "assistant", "content": f"The user asked: {t.prompt}\nI answered: {t.message}"}
            )
    return messages


def compact_session(session: ChatSession, settings: Any, instructions: str | None = None) -> str:
    """Summarise all but the last turn into `session.summary` (saved); returns the line to show.
    Raises ValueError when the model could not write a summary (the session is left as it was)."""
    from devloop.chat.slash import context_tokens
    from devloop.condense import SUMMARY_HEADING, compact
    from devloop.session import Session

    before = context_tokens(session.history())
    prepared = Session.prepare(settings)
    try:
        result = compact(session_messages(session), prepared.model, params=prepared.params,
                         instructions=instructions, keep_recent=KEEP_TURNS)  # fmt: skip
    finally:
        prepared.model.close()
    if result.method != "summary":
        raise ValueError(
            f"the model wrote no summary ({result.error or 'nothing to summarise'}); nothing changed"
        )
    task = str(result.messages[1]["content"])
    summary = task.partition(f"\n\n{SUMMARY_HEADING}\n")[2].strip()
    kept = len(result.messages) - 2
    session.summary, session.summarised = summary, len(session.turns) - kept
    session.save()
    after = context_tokens(session.history())
    return (
        f"compacted turns 1-{session.summarised} into a summary: history ≈{before:,} -> ≈{after:,} tokens "
        f"({result.usage.prompt_tokens + result.usage.completion_tokens:,} tokens spent)"
    )
