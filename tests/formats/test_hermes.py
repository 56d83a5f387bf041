import json

import pytest

from devloop.formats import FormatError, get_format
from devloop.types import Completion, Observation

FMT = get_format("hermes")


def parse(text, tools):
    return FMT.parse(Completion(content=text), tools)


def pairs(calls):
    return [(c.name, c.arguments) for c in calls]


def test_single_call_with_text_before(tools):
    text = 'Let me list the files.\n<tool_call>\n{"name": "execute_bash", "arguments": {"command": "ls"}}\n</tool_call><|im_end|>'
    calls = parse(text, tools)
    assert pairs(calls) == [("execute_bash", {"command": "ls"})]
    assert calls[0].raw.startswith("<tool_call>")


def test_several_calls_and_missing_final_close(tools):
    text = (
        '<tool_call>\n{"name": "think", "arguments": {"thought": "a"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "execute_bash", "arguments": {"command": "ls", "timeout": 3}}'
    )
    assert pairs(parse(text, tools)) == [
        ("think", {"thought": "a"}),
        ("execute_bash", {"command": "ls", "timeout": 3}),
    ]


def test_closing_tag_inside_json_string(tools):
    command = 'echo "</tool_call> <tool_call>{}"'
    text = (
        "<tool_call>"
        + json.dumps({"name": "execute_bash", "arguments": {"command": command}})
        + "</tool_call></s>"
    )
    assert pairs(parse(text, tools)) == [("execute_bash", {"command": command})]


def test_arguments_as_json_string(tools):
    body = json.dumps({"name": "think", "arguments": json.dumps({"thought": "x"})})
    assert pairs(parse(f"<tool_call>{body}</tool_call>", tools)) == [("think", {"thought": "x"})]


def test_no_call(tools):
    with pytest.raises(FormatError) as info:
        parse("All done, the tests pass.", tools)
    message = str(info.value)
    assert message.startswith("No tool call found in your reply.")
    assert '<tool_call>{"name": "execute_bash", "arguments": {"command": "ls -la"}}</tool_call>' in message


def test_invalid_json_position(tools):
    with pytest.raises(FormatError) as info:
        parse('<tool_call>\n{"name": "think", "arguments": {"thought": "a}\n</tool_call>', tools)
    message = str(info.value)
    assert "Invalid JSON in the call inside <tool_call>" in message
    assert "Unterminated string" in message
    assert "line 1, column 44, character 43" in message


def test_unknown_tool_and_bad_parameters(tools):
    with pytest.raises(FormatError, match="Unknown tool 'ls'"):
        parse('<tool_call>{"name": "ls", "arguments": {}}</tool_call>', tools)
    with pytest.raises(FormatError, match="missing required parameter 'thought'"):
        parse('<tool_call>{"name": "think", "arguments": {}}</tool_call>', tools)
    with pytest.raises(FormatError, match="unknown parameter 'extra'"):
        parse('<tool_call>{"name": "think", "arguments": {"thought": "x", "extra": 1}}</tool_call>', tools)


def test_empty_block_and_non_object(tools):
    with pytest.raises(FormatError, match="block is empty"):
        parse("<tool_call>\n</tool_call>", tools)
    with pytest.raises(FormatError, match='"name" string'):
        parse('<tool_call>["think"]</tool_call>', tools)
    with pytest.raises(FormatError, match="must be a JSON object.*not an array"):
        parse('<tool_call>{"name": "think", "arguments": ["x"]}</tool_call>', tools)


def test_render_tools_lists_json_signatures(tools):
    text = FMT.render_tools(tools)
    block = text[text.index("<tools>\n") + len("<tools>\n") : text.index("\n</tools>")]
    entries = [json.loads(line) for line in block.splitlines()]
    assert [e["function"]["name"] for e in entries] == [t.name for t in tools]
    editor = entries[1]["function"]["parameters"]
    assert editor["required"] == ["command", "path"]
    assert "title" not in editor and "title" not in editor["properties"]["path"]
    assert editor["properties"]["view_range"]["anyOf"][0] == {"items": {"type": "integer"}, "type": "array"}
    example = text[text.rindex("<tool_call>") : text.rindex("</tool_call>") + len("</tool_call>")]
    assert pairs(parse(example, tools)) == [("execute_bash", {"command": "ls -la"})]


def test_history_uses_tool_response_blocks(tools):
    text = '<tool_call>{"name": "think", "arguments": {"thought": "a"}}</tool_call>'
    completion = Completion(content=text)
    history = FMT.history(completion, FMT.parse(completion, tools), [Observation(text="noted")])
    assert history == [
        {"role": "assistant", "content": text},
        {"role": "user", "content": "<tool_response>\nEXECUTION RESULT of [think]:\nnoted\n</tool_response>"},
    ]
