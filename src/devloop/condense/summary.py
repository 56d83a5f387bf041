"""The summary request of a compaction: the old turns as a plain transcript, and the model's summary of
them (devloop.condense)."""

from __future__ import annotations

from typing import Any

from devloop.models.base import Model
from devloop.types import SamplingParams, Usage

SUMMARY_TOKENS = 1024
"""Cap on the summary's length (the summary request's max_tokens)."""
SUMMARY_REQUEST = "Condense the conversation below for a coding agent that will continue the work."
_TRANSCRIPT_ENTRY = 2000  # characters of one message the summary request shows, head and tail

_SUMMARY_SYSTEM = (
    "You summarise the history of a coding agent's session so that it can go on working with less "
    "context. Write plain text, no tool calls. Keep what the agent needs to continue: the goal, what it "
    "found (file paths, function names, error messages, test results), what it changed and where, what "
    "it tried that failed, and what it was about to do next. Leave out what no longer matters. Be brief."
)


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones (an image is not summarised)
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def clip(text: str, keep: int) -> str:
    if len(text) <= 2 * keep + 100:
        return text
    cut = len(text) - 2 * keep
    return f"{text[:keep]}\n[... {cut:,} characters cut to fit the context ...]\n{text[-keep:]}"


def _transcript(old: list[dict[str, Any]], limit_chars: int) -> str:
    """The old turns as plain text for the summary request, the oldest dropped first past `limit_chars`."""
    lines: list[str] = []
    for message in old:
        role = message.get("role", "?")
        text = clip(text_of(message), _TRANSCRIPT_ENTRY // 2)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function", {}) if isinstance(call, dict) else {}
                args = clip(str(fn.get("arguments", "")), _TRANSCRIPT_ENTRY // 2)
                text += f"\n[calls {fn.get('name', '?')}({args})]"
        label = {"assistant": "AGENT", "tool": "TOOL RESULT", "user": "USER"}.get(
            str(role), str(role).upper()
        )
        lines.append(f"--- {label}\n{text.strip()}")
    while len(lines) > 1 and sum(len(line) + 1 for line in lines) > limit_chars:
        lines.pop(0)
    return "\n".join(lines)[-limit_chars:]


def summarise(
    model: Model,
    task: str,
    previous: str,
    old: list[dict[str, Any]],
    params: SamplingParams | None,
    instructions: str | None,
    budget_tokens: int | None,
) -> tuple[str, Usage]:
    """The model's summary of `old` (and of `previous`, an earlier summary); raises ModelError."""
    params = params or SamplingParams(max_tokens=SUMMARY_TOKENS)
    cap = min(params.max_tokens or SUMMARY_TOKENS, SUMMARY_TOKENS)
    params = SamplingParams(params.temperature, params.top_p, cap, params.seed, None, params.extra_body)
    # The request itself must fit: the transcript gets what the budget leaves after the task and summary.
    room = 4 * (budget_tokens - cap) if budget_tokens is not None else 200_000
    room = max(2000, room - len(task) - len(previous))
    parts = [SUMMARY_REQUEST, f"The task:\n{clip(task, 4000)}"]
    if previous:
        parts.append(f"Summary of what came before:\n{previous}")
    parts.append(f"The conversation to condense:\n{_transcript(old, room)}")
    if instructions and instructions.strip():
        parts.append(f"The user's instructions for this summary: {instructions.strip()}")
    request = [
        {"role": "system", "content": _SUMMARY_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
    completion = model.complete(request, None, params)
    summary = (completion.content or "").strip()
    return clip(summary, 2 * cap), completion.usage  # ~4 characters a token: a reply past its cap is cut
