import json

import pytest

from devloop.formats import FormatError, get_format
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation

FMT = get_format("native")


def tc(name, arguments, call_id="call_1"):
    entry = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        entry["id"] = call_id
    return entry


def test_render_tools_is_empty(tools):
    assert FMT.render_tools(tools) == ""


def test_parse_calls_in_order(tools):
    completion = Completion(
        content="Looking around.",
        tool_calls=[
            tc("execute_bash", json.dumps({"command": "ls -la", "timeout": 30}), "a1"),
            tc("think", '{"thought": "next"}', "a2"),
        ],
    )
    calls = FMT.parse(completion, tools)
    assert [(c.name, c.arguments, c.id) for c in calls] == [
        ("execute_bash", {"command": "ls -la", "timeout": 30}, "a1"),
        ("think", {"thought": "next"}, "a2"),
    ]
    assert calls[0].raw == json.dumps({"command": "ls -la", "timeout": 30})


def test_missing_id_gets_stable_alnum_id_used_in_history(tools):
    completion = Completion(content=None, tool_calls=[tc("think", '{"thought": "x"}', None)])
    first = FMT.parse(completion, tools)[0].id
    second = FMT.parse(completion, tools)[0].id
    assert first == second
    assert len(first) == 9 and first.isalnum()
    calls = FMT.parse(completion, tools)
    history = FMT.history(completion, calls, [Observation(text="ok")])
    assert history[0]["tool_calls"][0]["id"] == first
    assert history[1] == {"role": "tool", "tool_call_id": first, "content": "ok"}


def test_ids_differ_between_calls(tools):
    completion = Completion(
        content=None,
        tool_calls=[tc("think", '{"thought": "x"}', None), tc("think", '{"thought": "x"}', None)],
    )
    ids = [c.id for c in FMT.parse(completion, tools)]
    assert ids[0] != ids[1]


def test_empty_arguments_for_tool_without_parameters():
    tools = [ToolSpec("noop", "Nothing.", {"type": "object", "properties": {}})]
    calls = FMT.parse(Completion(content=None, tool_calls=[tc("noop", "")]), tools)
    assert calls[0].arguments == {}


def test_double_encoded_arguments_are_unwrapped(tools):
    doubly = json.dumps(json.dumps({"command": "pwd"}))
    calls = FMT.parse(Completion(content=None, tool_calls=[tc("execute_bash", doubly)]), tools)
    assert calls[0].arguments == {"command": "pwd"}


def test_dict_arguments_are_accepted(tools):
    calls = FMT.parse(Completion(content=None, tool_calls=[tc("execute_bash", {"command": "pwd"})]), tools)
    assert calls[0].arguments == {"command": "pwd"}


def test_no_tool_calls_is_an_error(tools):
    with pytest.raises(FormatError) as info:
        FMT.parse(Completion(content="I think the bug is in foo.py."), tools)
    message = str(info.value)
    assert "No tool call found" in message
    assert "function-calling" in message
    assert "execute_bash" in message
    assert "finish" in message


def test_invalid_json_quotes_position(tools):
    with pytest.raises(FormatError) as info:
        FMT.parse(Completion(content=None, tool_calls=[tc("execute_bash", '{"command": "ls",}')]), tools)
    message = str(info.value)
    assert "Invalid JSON in the arguments of your call to 'execute_bash'" in message
    assert "line 1, column 18" in message
    assert "character 17" in message


def test_arguments_must_be_an_object(tools):
    with pytest.raises(FormatError, match="must be a JSON object.*not an array"):
        FMT.parse(Completion(content=None, tool_calls=[tc("execute_bash", '["ls"]')]), tools)


def test_unknown_tool_lists_tools(tools):
    with pytest.raises(FormatError) as info:
        FMT.parse(Completion(content=None, tool_calls=[tc("bash", '{"command": "ls"}')]), tools)
    message = str(info.value)
    assert "Unknown tool 'bash'" in message
    assert "execute_bash, str_replace_editor, think, finish" in message


def test_missing_and_unknown_parameters(tools):
    with pytest.raises(FormatError) as info:
        FMT.parse(
            Completion(content=None, tool_calls=[tc("str_replace_editor", '{"path": "/a", "cmd": "view"}')]),
            tools,
        )
    message = str(info.value)
    assert "'str_replace_editor'" in message
    assert "missing required parameter 'command'" in message
    assert "unknown parameter 'cmd' (did you mean 'command'?)" in message


def test_malformed_entry(tools):
    with pytest.raises(FormatError, match="no 'function' object"):
        FMT.parse(Completion(content=None, tool_calls=[{"id": "x", "type": "function"}]), tools)


def test_history_shape(tools):
    completion = Completion(
        content="Two things.",
        tool_calls=[tc("think", '{"thought": "a"}', "id1"), tc("execute_bash", '{"command": "ls"}', "id2")],
    )
    calls = FMT.parse(completion, tools)
    history = FMT.history(completion, calls, [Observation(text="A"), Observation(text="B")])
    assert history[0] == {"role": "assistant", "content": "Two things.", "tool_calls": completion.tool_calls}
    assert history[1:] == [
        {"role": "tool", "tool_call_id": "id1", "content": "A"},
        {"role": "tool", "tool_call_id": "id2", "content": "B"},
    ]


def test_history_after_parse_error_answers_every_call(tools):
    completion = Completion(
        content="", tool_calls=[tc("think", '{"thought": "a"}', "id1"), tc("nope", "{}", "id2")]
    )
    error = Observation(text="Unknown tool 'nope'.", is_error=True)
    history = FMT.history(completion, [], [error])
    assert [m["tool_call_id"] for m in history[1:]] == ["id1", "id2"]
    assert all(m["content"] == error.text for m in history[1:])


def test_history_without_tool_calls_uses_user_message(tools):
    completion = Completion(content="I am done?")
    history = FMT.history(completion, [], [Observation(text="No tool call found.", is_error=True)])
    assert history == [
        {"role": "assistant", "content": "I am done?"},
        {"role": "user", "content": "No tool call found."},
    ]


def test_history_marks_skipped_calls_not_executed(tools):
    completion = Completion(
        content="",
        tool_calls=[tc("finish", '{"message": "done"}', "f1"), tc("think", '{"thought": "a"}', "t1")],
    )
    calls = FMT.parse(completion, tools)[:1]
    history = FMT.history(completion, calls, [Observation(text="Finished.", finished=True)])
    assert history[1:] == [
        {"role": "tool", "tool_call_id": "f1", "content": "Finished."},
        {"role": "tool", "tool_call_id": "t1", "content": "Not executed."},
    ]
