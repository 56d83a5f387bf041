"""devloop.condense: what a compaction keeps, the summary request, the fallback, the trigger, the window."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devloop.condense import (
    SUMMARY_HEADING,
    SUMMARY_REQUEST,
    Condenser,
    compact,
    context_window_of,
    estimate_tokens,
    window_from_error,
)
from devloop.models.openai_compat import OpenAICompatModel, listed_window
from devloop.models.scripted_server import ScriptedServer

SYSTEM = {"role": "system", "content": "You are a coding agent. " * 20}
TASK = {"role": "user", "content": "Fix the bug in calc/ops.py: mul adds."}


def conversation(turns: int, size: int = 1500, native: bool = True) -> list[dict[str, Any]]:
    """System, task, then `turns` tool calls, each answered by an observation of `size` characters."""
    messages = [SYSTEM, TASK]
    for i in range(turns):
        out = f"observation {i}: " + "".join(f"line {i}.{n}\n" for n in range(size // 10))[:size]
        if native:
            call = {"id": f"c{i}", "type": "function",
                    "function": {"name": "execute_bash", "arguments": json.dumps({"command": f"step {i}"})}}  # fmt: skip
            messages += [{"role": "assistant", "content": f"thinking {i}", "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": f"c{i}", "content": out}]  # fmt: skip
        else:
            messages += [{"role": "assistant", "content": f"<function=execute_bash>step {i}</function>"},
                         {"role": "user", "content": out}]  # fmt: skip
    return messages


def paired(messages: list[dict[str, Any]]) -> bool:
    """Every tool result answers a call of the assistant message before it."""
    calls: set[str] = set()
    for m in messages:
        if m["role"] == "assistant":
            calls = {c["id"] for c in m.get("tool_calls", [])}
        elif m["role"] == "tool" and m["tool_call_id"] not in calls:
            return False
    return True


def test_the_summary_follows_the_task_and_the_recent_turns_stay_verbatim(fake_model: Any) -> None:
    messages = conversation(10)
    model = fake_model([{"content": "Ran steps 0-5; mul is in calc/ops.py line 5."}])
    result = compact(messages, model, instructions="keep the file names", keep_recent=3)
    out = result.messages
    assert result.method == "summary"
    assert out[0] == SYSTEM  # the prompt's prefix is what the server saw: its cache stays warm
    assert out[1]["content"].startswith(TASK["content"])
    assert out[1]["content"].endswith(f"{SUMMARY_HEADING}\nRan steps 0-5; mul is in calc/ops.py line 5.")
    assert out[2:] == messages[-6:] and out[2]["role"] == "assistant" and paired(out)
    assert result.tokens_after < result.tokens_before / 2
    (request,) = model.requests
    assert request["tools"] is None
    sent = request["messages"][-1]["content"]
    assert sent.startswith(SUMMARY_REQUEST) and "keep the file names" in sent
    assert "observation 0:" in sent and "step 6" in sent and "observation 7:" not in sent
    assert messages == conversation(10)  # the input is left as it was


def test_a_second_compaction_folds_in_the_first_summary(fake_model: Any) -> None:
    model = fake_model([{"content": "FIRST: found the bug"}, {"content": "SECOND: fixed it"}])
    first = compact(conversation(8), model, keep_recent=2).messages
    longer = first + conversation(12)[-8:]
    second = compact(longer, model, keep_recent=2).messages
    assert "FIRST: found the bug" in model.requests[1]["messages"][-1]["content"]
    assert second[1]["content"].count(SUMMARY_HEADING) == 1
    assert second[1]["content"].endswith("SECOND: fixed it") and second[1]["content"].startswith(
        TASK["content"]
    )


@pytest.mark.parametrize("native", [True, False])
def test_when_the_summary_fails_old_observations_are_cut(fake_model: Any, native: bool) -> None:
    messages = conversation(10, size=5000, native=native)
    budget = estimate_tokens(messages) // 2
    result = compact(messages, fake_model([]), budget_tokens=budget, keep_recent=2)  # the model errs
    out = result.messages
    assert result.method == "truncate" and "summary request failed" in result.error
    assert len(out) == len(messages) and paired(out)
    assert out[:2] == messages[:2] and out[-2:] == messages[-2:]  # the last turn is whole
    assert "characters cut to fit the context" in out[3]["content"]
    assert out[3]["content"].startswith("observation 0:")
    assert result.tokens_after <= budget


def test_an_empty_summary_falls_back_and_a_tiny_budget_drops_the_oldest_turns(fake_model: Any) -> None:
    messages = conversation(10)
    result = compact(messages, fake_model([{"content": "  "}]), budget_tokens=900, keep_recent=2)
    out = result.messages
    assert result.method == "truncate" and "no text" in result.error
    assert out[0] == SYSTEM and "earlier turn(s) were dropped" in out[1]["content"]
    assert out[2]["role"] == "assistant" and paired(out) and out[-1]["tool_call_id"] == "c9"
    assert result.tokens_after <= 900


def test_the_condenser_compacts_past_its_fraction_and_aims_under_the_target(fake_model: Any) -> None:
    messages = conversation(10)
    window = int(estimate_tokens(messages) / 0.75)  # the conversation is at 75% of the window
    condenser = Condenser(fake_model([{"content": "summary"}]), window, at=0.8, target=0.5)
    assert condenser.fit(messages, None) is None
    grown = conversation(12)  # now past 80%
    result = condenser.fit(grown, None)
    assert result is not None and result.method == "summary"
    assert result.tokens_after <= 0.5 * window < result.tokens_before


def test_recovery_learns_the_window_from_the_servers_error(fake_model: Any) -> None:
    vllm = (
        "context length exceeded: This model's maximum context length is 4,096 tokens. However, you "
        "requested 9000 tokens. Please reduce the length of the messages or completion."
    )
    assert window_from_error(vllm) == 4096 and window_from_error("bad request") is None
    condenser = Condenser(fake_model([{"content": "summary"}]), None)
    assert condenser.fit(conversation(10), None) is None  # no window known: nothing to trigger on
    result = condenser.recover(conversation(10), None, None, vllm)
    assert condenser.window == 4096 and result.tokens_after <= 0.5 * 4096


def test_the_window_is_read_from_the_servers_model_listing() -> None:
    with ScriptedServer([], context_window=2048) as served, ScriptedServer([]) as unlisted:
        for server, expected in ((served, 2048), (unlisted, None)):
            model = OpenAICompatModel("scripted", server.url, "k", max_retries=0)
            try:
                assert model.context_window() == expected
                assert context_window_of(model) == expected
            finally:
                model.close()
    listing = {"data": [{"id": "a", "context_length": 8192}, {"id": "b", "max_context_length": 4096}]}
    assert listed_window(listing, "b") == 4096 and listed_window(listing, "c") is None
    assert listed_window({"data": [{"id": "served", "max_model_len": 32768}]}, "other") == 32768
    assert listed_window({"data": [{"id": "m", "max_model_len": True}]}, "m") is None
    assert listed_window([], "m") is None
