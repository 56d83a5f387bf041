"""Context that fits the model: compact a conversation when it nears the model's context window.

The function chat's `/compact [instructions]` and `devloop run --condense` both use:

    compact(messages, model, *, params=None, instructions=None, budget_tokens=None,
            keep_recent=KEEP_RECENT) -> Compaction

`messages` is an OpenAI chat message list (system prompt first, then the task, then the turns); `model`
any devloop Model (it writes the summary); `params` the sampling of the summary request (its max_tokens
is capped to SUMMARY_TOKENS); `instructions` the user's words on what the summary must keep;
`budget_tokens` the size the result should fit in (None: no size goal, the old turns are summarised
anyway). The returned Compaction holds the new list in `.messages` (the input is not modified), how it
was made (`.method`: "summary" or "truncate"), the tokens before and after (estimated) and the summary
request's token use.

What is kept, and why:

* the system prompt and the task (the first user message) stay verbatim and first, and the summary is
  appended to the task's text: the prompt is still a prefix of what the server saw before (system,
  then the task's own text), so its prefix cache keeps those tokens warm, and the roles still alternate
  as strict chat templates (Mistral's) require;
* the most recent turns (a turn starts at an assistant message and holds the tool results that answer
  it) stay verbatim, so a tool call is never cut from its result;
* the turns in between are replaced by a summary the model itself writes (one summarisation request,
  no tools). An earlier summary is folded into the new one.

When the summary request fails (a model error, an empty reply), the deterministic fallback keeps every
message but cuts old observations (tool results, and the user messages that carry text-format results)
to their head and tail, oldest first, then drops the oldest turns whole if it must, and last cuts the
latest turn's observations (a single result larger than the window). The same cutting applies after a
summary that still leaves the prompt over the budget.

The summary request is `condense.summary`; what the window is (the server's listing, a refusal's
message), `condense.window`.

`Condenser` is the agent loop's side: the window (from the server's `/v1/models` entry, e.g. vLLM's
`max_model_len`, or the `context_window` setting), compaction once the prompt passes a fraction of it
(`condense_at`), and `recover` for a request the server refused as too long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devloop.condense.summary import SUMMARY_REQUEST, SUMMARY_TOKENS, clip, summarise, text_of
from devloop.condense.window import context_window_of, is_context_error, window_from_error
from devloop.models.base import Model, ModelError
from devloop.types import SamplingParams, Usage

__all__ = [
    "KEEP_RECENT", "SUMMARY_HEADING", "SUMMARY_REQUEST", "SUMMARY_TOKENS", "Compaction", "Condenser", "compact",
    "context_window_of", "estimate_tokens", "is_context_error", "window_from_error",
]  # fmt: skip

KEEP_RECENT = 4
"""Turns kept verbatim at most (fewer when they alone would not fit the budget; at least the last)."""
SUMMARY_HEADING = "[devloop: summary of the earlier conversation]"
"""Where the summary starts in the task message (a later compaction reads it back from there)."""
_OBSERVATION_KEEP = 600  # characters of an old observation's head and of its tail the fallback keeps


@dataclass
class Compaction:
    """The result of one compaction."""

    messages: list[dict[str, Any]]
    method: str  # "summary" (the model wrote one), "truncate" (the fallback), or "none" (nothing to do)
    tokens_before: int
    tokens_after: int
    usage: Usage = field(default_factory=Usage)  # the summary request's tokens
    error: str = ""  # why the summary request was not used, when the fallback ran

    def record(self) -> dict[str, Any]:
        """What the trajectory keeps of it."""
        return {
            "method": self.method,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "messages": len(self.messages),
            **({"error": self.error} if self.error else {}),
        }


def estimate_tokens(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, bytes_per_token: float = 4.0
) -> int:
    """Tokens of a request holding `messages` and `tools`, from its JSON size (`bytes_per_token`: 4 is
    a usual average for English and code; Condenser calibrates it from the server's counts)."""
    size = len(json.dumps(messages, ensure_ascii=False).encode())
    if tools:
        size += len(json.dumps(tools, ensure_ascii=False).encode())
    return int(size / bytes_per_token) + 1


def compact(
    messages: list[dict[str, Any]],
    model: Model,
    *,
    params: SamplingParams | None = None,
    instructions: str | None = None,
    budget_tokens: int | None = None,
    keep_recent: int = KEEP_RECENT,
    tools: list[dict[str, Any]] | None = None,
    bytes_per_token: float = 4.0,
) -> Compaction:
    """`messages` compacted (see the module doc); never raises for a model failure (the fallback runs).
    `tools`: the request's tools, counted in the budget."""

    def size(msgs: list[dict[str, Any]]) -> int:
        return estimate_tokens(msgs, tools, bytes_per_token)

    before = size(messages)
    head_n = _head_length(messages)
    head, rest = messages[:head_n], messages[head_n:]
    turns = _turns(rest)
    if not turns:
        return Compaction(list(messages), "none", before, before)
    recent_budget = None if budget_tokens is None else max(1, budget_tokens // 2)
    keep = _recent_count(turns, keep_recent, recent_budget, lambda ms: size(ms) - size([]))
    old = [m for turn in turns[: len(turns) - keep] for m in turn]
    recent = [m for turn in turns[len(turns) - keep :] for m in turn]
    error = ""
    usage = Usage()
    if old and head and head[-1].get("role") == "user":
        task, previous = _split_summary(text_of(head[-1]))
        try:
            summary, usage = summarise(model, task, previous, old, params, instructions, budget_tokens)
        except ModelError as e:
            error = f"summary request failed: {e.reason}"
        else:
            if summary:
                new_task = {**head[-1], "content": f"{task}\n\n{SUMMARY_HEADING}\n{summary}"}
                out = [*head[:-1], new_task, *recent]
                if budget_tokens is not None and size(out) > budget_tokens:  # the recent turns are large
                    out = _truncate(out, head_n, budget_tokens, size)
                return Compaction(out, "summary", before, size(out), usage)
            else:
                error = "the summary request returned no text"
    elif not old:
        error = "no turns old enough to summarise"
    else:
        error = "no task message to hold the summary"
    out = _truncate(messages, head_n, budget_tokens, size)
    return Compaction(out, "truncate", before, size(out), usage, error)


@dataclass
class Condenser:
    """Keeps an agent's prompt under `at` x `window` tokens (window None: unknown, so only `recover`
    acts, learning the window from the server's error when it states one). `reserve`: tokens kept free
    for the reply (the request's max_tokens). After a compaction the prompt is aimed at `target` x
    window, well under the trigger, so that compactions are rare and the prefix cache stays warm for
    the many appended steps in between."""

    model: Model
    window: int | None
    at: float = 0.8
    target: float = 0.5
    reserve: int = 0
    keep_recent: int = KEEP_RECENT
    bytes_per_token: float = 4.0
    compactions: int = 0

    def needed(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> bool:
        if self.window is None:
            return False
        return estimate_tokens(messages, tools, self.bytes_per_token) + self.reserve > self.at * self.window

    def fit(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams | None = None,
    ) -> Compaction | None:
        """The compacted conversation when the prompt has passed the trigger, else None."""
        if not self.needed(messages, tools):
            return None
        return self._compact(messages, tools, params, self._budget(self.target))

    def recover(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams | None,
        reason: str,
    ) -> Compaction:
        """The conversation compacted after the server refused it as too long (`reason`: its error)."""
        stated = window_from_error(reason)
        if stated is not None and (self.window is None or stated < self.window):
            self.window = stated
        if self.window is None:  # the server did not say: at least halve what was refused
            self.window = estimate_tokens(messages, tools, self.bytes_per_token)
        # The estimate was wrong by some margin: trust it less from now on.
        self.bytes_per_token = max(1.5, self.bytes_per_token * 0.8)
        return self._compact(messages, tools, params, self._budget(self.target))

    def observe(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, prompt_tokens: int
    ) -> None:
        """Calibrate bytes per token from the server's count of the prompt just sent."""
        if prompt_tokens <= 0:
            return
        size = estimate_tokens(messages, tools, 1.0)
        self.bytes_per_token = min(8.0, max(1.5, size / prompt_tokens))

    def _budget(self, fraction: float) -> int:
        assert self.window is not None
        return max(1, int(fraction * self.window) - self.reserve)

    def _compact(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams | None,
        budget: int,
    ) -> Compaction:
        self.compactions += 1
        summary_params = SamplingParams(
            temperature=params.temperature if params else 0.0,
            max_tokens=max(64, min(SUMMARY_TOKENS, budget // 4)),
            seed=params.seed if params else None,
            extra_body=params.extra_body if params else None,
        )
        return compact(
            messages,
            self.model,
            params=summary_params,
            budget_tokens=budget,
            keep_recent=self.keep_recent,
            tools=tools,
            bytes_per_token=self.bytes_per_token,
        )


# --- the pieces ------------------------------------------------------------------------------------------


def _head_length(messages: list[dict[str, Any]]) -> int:
    """How many leading messages are kept as they are: the system message(s) and the first user message."""
    n = 0
    while n < len(messages) and messages[n].get("role") == "system":
        n += 1
    if n < len(messages) and messages[n].get("role") == "user":
        n += 1
    return n


def _turns(rest: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`rest` cut before each assistant message (what precedes the first one is a turn of its own)."""
    turns: list[list[dict[str, Any]]] = []
    for message in rest:
        if message.get("role") == "assistant" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def _recent_count(turns: list[list[dict[str, Any]]], most: int, budget: int | None, size: Any) -> int:
    """How many of the last turns to keep verbatim: up to `most`, as many as fit in `budget`, at least one.
    A turn that does not start at an assistant message (the opening of a cut list) is never the first kept,
    so the kept part always begins with the model's reply."""
    keep = 1
    while keep < min(most, len(turns)):
        candidate = [m for turn in turns[len(turns) - keep - 1 :] for m in turn]
        if budget is not None and size(candidate) > budget:
            break
        keep += 1
    while keep < len(turns) and turns[len(turns) - keep][0].get("role") != "assistant":
        keep += 1
    return keep


def _split_summary(task: str) -> tuple[str, str]:
    """The task's own text, and the summary an earlier compaction appended to it ("" if none)."""
    own, found, previous = task.partition(f"\n\n{SUMMARY_HEADING}\n")
    return (own, previous) if found else (task, "")


def _truncate(
    messages: list[dict[str, Any]], head_n: int, budget: int | None, size: Any
) -> list[dict[str, Any]]:
    """The fallback: old observations cut to head and tail, oldest first, until `budget` is met (None:
    every observation but the last turn's); then the oldest turns dropped whole, never the last one."""
    out = [dict(m) for m in messages]
    rest = _turns(out[head_n:])
    last = len(out) - len(rest[-1]) if rest else len(out)
    for i in range(head_n, last):
        if budget is not None and size(out) <= budget:
            return out
        if out[i].get("role") in ("tool", "user") and isinstance(out[i].get("content"), str):
            out[i]["content"] = clip(out[i]["content"], _OBSERVATION_KEEP)
    turns = _turns(out[head_n:])
    dropped = 0
    while budget is not None and len(turns) > 1 and size([*out[:head_n], *_flat(turns)]) > budget:
        turns.pop(0)
        while len(turns) > 1 and turns[0][0].get("role") != "assistant":
            turns.pop(0)
        dropped += 1
    if budget is not None and size([*out[:head_n], *_flat(turns)]) > budget:  # the last turn alone is too big
        for message in turns[-1]:
            if message.get("role") in ("tool", "user") and isinstance(message.get("content"), str):
                message["content"] = clip(message["content"], _OBSERVATION_KEEP)
    if not dropped:
        return [*out[:head_n], *_flat(turns)]
    note = f"[{dropped} earlier turn(s) were dropped to fit the model's context window]"
    head = out[:head_n]
    if head and head[-1].get("role") == "user" and isinstance(head[-1].get("content"), str):
        head[-1] = {**head[-1], "content": f"{head[-1]['content']}\n\n{note}"}
    return [*head, *_flat(turns)]


def _flat(turns: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [m for turn in turns for m in turn]
