"""The bounds on one reply and the hostile inputs the fuzzer found, each pinned to its message."""

from __future__ import annotations

import json

import pytest

from devloop.formats import MAX_CALLS, MAX_JSON_DEPTH, MAX_REPLY_CHARS, FormatError, get_format
from devloop.formats.base import MAX_ERROR_CHARS
from devloop.types import Completion, Observation


def native(arguments: object, name: str = "execute_bash") -> Completion:
    return Completion(
        content=None, tool_calls=[{"id": "c1", "function": {"name": name, "arguments": arguments}}]
    )


def error(fmt: str, completion: Completion, tools) -> str:
    with pytest.raises(FormatError) as info:
        get_format(fmt).parse(completion, tools)
    return str(info.value)


def test_nesting_past_the_limit_is_refused_without_recursion(tools):
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested more than" in error("native", native(deep), tools)
    just_over = {"command": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)}
    assert f"more than {MAX_JSON_DEPTH} levels" in error("native", native(json.dumps(just_over)), tools)
    text = (
        '<tool_call>{"name": "think", "arguments": {"thought": ' + "[" * 5000 + "]" * 5000 + "}}</tool_call>"
    )
    assert "nested more than" in error("hermes", Completion(text), tools)


@pytest.mark.parametrize("tool_calls", [{"name": "think"}, "execute_bash", 7])
def test_tool_calls_that_are_not_a_list(tools, tool_calls):
    completion = Completion(content="hi", tool_calls=tool_calls)
    assert "tool_calls must be a list" in error("native", completion, tools)
    messages = get_format("native").history(completion, [], [Observation("the error", is_error=True)])
    assert messages == [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "the error"}]


def test_lone_surrogates_are_refused_in_calls_and_replaced_in_the_history(tools):
    message = error("native", native('{"command": "echo \\ud800"}'), tools)
    assert "lone UTF-16 surrogate ('\\ud800' at character 5)" in message
    reply = Completion("Thinking \ud83d.\n<function=think>\n<parameter=thought>ok</parameter>\n</function>")
    calls = get_format("xml").parse(reply, tools)
    assert calls[0].arguments == {"thought": "ok"}
    history = get_format("xml").history(reply, calls, [Observation("done")])
    assert history[0]["content"].startswith("Thinking \ufffd.")
    json.dumps(history, ensure_ascii=False).encode("utf-8")  # sendable


def test_size_and_call_count_caps(tools):
    big = json.dumps({"command": "x" * MAX_REPLY_CHARS})
    assert f"over the limit of {MAX_REPLY_CHARS:,}" in error("native", native(big), tools)
    assert "Too much text in your reply" in error("mistral", Completion(" " * (MAX_REPLY_CHARS + 1)), tools)
    many = "".join('[TOOL_CALLS]think[ARGS]{"thought": "t"}' for _ in range(MAX_CALLS + 1))
    assert f"at most {MAX_CALLS} in one reply" in error("mistral", Completion(many), tools)


def test_numbers_past_pythons_digit_limit_are_format_errors(tools):
    xml = (
        f"<function=execute_bash><parameter=command>ls</parameter><parameter=timeout>{'9' * 5000}</parameter>"
    )
    assert "expects a value of type integer" in error("xml", Completion(xml + "</function>"), tools)
    mistral = '[TOOL_CALLS]execute_bash[ARGS]{"command": "ls", "timeout": ' + "9" * 5000 + "}"
    assert "a number with too many digits" in error("mistral", Completion(mistral), tools)


def test_messages_stay_short_whatever_they_quote(tools):
    message = error("native", native("{}", name="x" * 1_000_000), tools)
    assert message.startswith("Unknown tool 'xxxx") and "1,000,000 characters" in message
    assert len(message) < 300
    garbage = "<function=think>" + "".join(f"<parameter=p{i}>v</parameter>" for i in range(1000))
    assert len(error("xml", Completion(garbage), tools)) <= MAX_ERROR_CHARS


@pytest.mark.parametrize("content", [[{"type": "text", "text": "[TOOL_CALLS]think[ARGS]{}"}], 12, {"a": 1}])
def test_content_that_is_not_a_string(tools, content):
    completion = Completion(content=content)
    if isinstance(content, list):  # OpenAI content parts are text
        with pytest.raises(FormatError, match="Invalid call to tool 'think'"):
            get_format("mistral").parse(completion, tools)
    else:
        assert "content must be text" in error("mistral", completion, tools)
    assert get_format("mistral").history(completion, [], [])[0]["role"] == "assistant"
