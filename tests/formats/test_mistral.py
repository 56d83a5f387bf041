import json

import pytest

from devloop.formats import FormatError, get_format
from devloop.types import Completion, Observation, ToolCall

FMT = get_format("mistral")


def parse(text, tools):
    return FMT.parse(Completion(content=text), tools)


def pairs(calls):
    return [(c.name, c.arguments) for c in calls]


def test_devstral_v13_shape_with_text_before_and_eos(tools):
    text = (
        "I'll look at the failing test first.\n\n"
        '[TOOL_CALLS]str_replace_editor[ARGS]{"command": "view", "path": "/repo/tests/test_x.py", '
        '"view_range": [1, 40]}</s>'
    )
    calls = parse(text, tools)
    assert pairs(calls) == [
        ("str_replace_editor", {"command": "view", "path": "/repo/tests/test_x.py", "view_range": [1, 40]})
    ]
    assert calls[0].raw.startswith("str_replace_editor[ARGS]{")
    assert len(calls[0].id) == 9


def test_several_calls_each_with_tool_calls_token(tools):
    text = (
        '[TOOL_CALLS]think[ARGS]{"thought": "a"}[TOOL_CALLS]execute_bash[ARGS]{"command": "ls", "timeout": 5}'
    )
    assert pairs(parse(text, tools)) == [
        ("think", {"thought": "a"}),
        ("execute_bash", {"command": "ls", "timeout": 5}),
    ]


def test_brackets_braces_and_tokens_inside_strings(tools):
    command = "python -c \"print({'a': [1, 2]}['a'])\" # ] } [TOOL_CALLS]x[ARGS]{"
    text = "[TOOL_CALLS]execute_bash[ARGS]" + json.dumps({"command": command}) + "</s>"
    assert pairs(parse(text, tools)) == [("execute_bash", {"command": command})]


def test_multiline_code_with_escapes(tools):
    new = 'def f(x):\n    return "\\\\n" + x\n'
    args = {"command": "str_replace", "path": "/a.py", "old_str": "pass", "new_str": new}
    text = "[TOOL_CALLS]str_replace_editor[ARGS]" + json.dumps(args)
    assert pairs(parse(text, tools)) == [("str_replace_editor", args)]


def test_raw_newlines_inside_json_strings_are_accepted(tools):
    text = '[TOOL_CALLS]execute_bash[ARGS]{"command": "cd /repo\nls"}'
    assert parse(text, tools)[0].arguments == {"command": "cd /repo\nls"}


def test_list_shape(tools):
    text = (
        'Let me check.[TOOL_CALLS][{"name": "execute_bash", "arguments": {"command": "echo \\"[]{}\\""}}, '
        '{"name": "finish", "arguments": {"message": "done"}}]</s>'
    )
    assert pairs(parse(text, tools)) == [
        ("execute_bash", {"command": 'echo "[]{}"'}),
        ("finish", {"message": "done"}),
    ]


def test_list_shape_with_string_arguments_and_ids(tools):
    item = {"name": "execute_bash", "arguments": json.dumps({"command": "ls"}), "id": "Ab3dE6gH9"}
    calls = parse("[TOOL_CALLS]" + json.dumps([item]), tools)
    assert pairs(calls) == [("execute_bash", {"command": "ls"})]
    assert calls[0].id == "Ab3dE6gH9"


def test_list_shape_with_space_after_token(tools):
    calls = parse('[TOOL_CALLS] [{"name": "think", "arguments": {"thought": "x"}}]', tools)
    assert pairs(calls) == [("think", {"thought": "x"})]


def test_v11_call_id_shape(tools):
    calls = parse('[TOOL_CALLS]think[CALL_ID]a1B2c3D4e[ARGS]{"thought": "x"}', tools)
    assert pairs(calls) == [("think", {"thought": "x"})]
    assert calls[0].id == "a1B2c3D4e"


def test_args_token_lost_in_decoding(tools):
    text = '[TOOL_CALLS]think{"thought": "x"}, execute_bash{"command": "ls"}'
    assert pairs(parse(text, tools)) == [("think", {"thought": "x"}), ("execute_bash", {"command": "ls"})]


def test_special_tokens_stripped_entirely(tools):
    assert pairs(parse('execute_bash[ARGS]{"command": "ls"}', tools)) == [("execute_bash", {"command": "ls"})]
    assert pairs(parse('  execute_bash{"command": "ls"}</s>', tools)) == [("execute_bash", {"command": "ls"})]
    assert pairs(parse('[{"name": "think", "arguments": {"thought": "t"}}]', tools)) == [
        ("think", {"thought": "t"})
    ]


def test_text_after_call_that_is_not_a_call_is_ignored(tools):
    text = '[TOOL_CALLS]think[ARGS]{"thought": "x"} and then {"x": 1}'
    assert pairs(parse(text, tools)) == [("think", {"thought": "x"})]


def test_no_call(tools):
    with pytest.raises(FormatError) as info:
        parse("The fix is to change line 3.</s>", tools)
    message = str(info.value)
    assert message.startswith("No tool call found in your reply.")
    assert "[TOOL_CALLS]" in message and "[ARGS]" in message
    assert '[TOOL_CALLS]execute_bash[ARGS]{"command": "ls -la"}' in message


def test_invalid_json_position(tools):
    with pytest.raises(FormatError) as info:
        parse('[TOOL_CALLS]execute_bash[ARGS]{"command": "ls" "timeout": 3}', tools)
    message = str(info.value)
    assert "Invalid JSON in the arguments of your call to 'execute_bash'" in message
    assert "Expecting ',' delimiter" in message
    assert "line 1, column 18, character 17" in message
    assert '"ls" <<HERE>>"timeout"' in message
    assert "[TOOL_CALLS]execute_bash[ARGS]" in message


def test_unterminated_json(tools):
    with pytest.raises(FormatError, match="Unterminated string"):
        parse('[TOOL_CALLS]execute_bash[ARGS]{"command": "ls</s>', tools)


def test_arguments_not_an_object(tools):
    with pytest.raises(FormatError, match="must be a JSON object"):
        parse('[TOOL_CALLS]execute_bash[ARGS]["ls"]', tools)
    with pytest.raises(FormatError, match="not a string"):
        parse('[TOOL_CALLS]execute_bash[ARGS]"ls"', tools)


def test_unknown_tool(tools):
    with pytest.raises(FormatError) as info:
        parse('[TOOL_CALLS]str_replace[ARGS]{"command": "view"}', tools)
    message = str(info.value)
    assert "Unknown tool 'str_replace'" in message
    assert "(did you mean 'str_replace_editor'?)" in message
    assert "execute_bash, str_replace_editor, think, finish" in message


def test_missing_required_and_unknown_parameter(tools):
    with pytest.raises(FormatError) as info:
        parse('[TOOL_CALLS]finish[ARGS]{"summary": "done"}', tools)
    message = str(info.value)
    assert "missing required parameter 'message'" in message
    assert "unknown parameter 'summary'" in message
    assert "'finish'" in message


def test_missing_name_or_args(tools):
    with pytest.raises(FormatError, match="Expected a tool name"):
        parse("[TOOL_CALLS]", tools)
    with pytest.raises(FormatError, match=r"Expected \[ARGS\] and a JSON object.*'think'"):
        parse("[TOOL_CALLS]think thought=x", tools)


def test_list_items_must_name_a_tool(tools):
    with pytest.raises(FormatError, match='"name" string'):
        parse('[TOOL_CALLS][{"arguments": {}}]', tools)


def test_history(tools):
    text = (
        'Checking.[TOOL_CALLS]think[ARGS]{"thought": "a"}[TOOL_CALLS]execute_bash[ARGS]{"command": "ls"}</s>'
    )
    completion = Completion(content=text)
    calls = FMT.parse(completion, tools)
    history = FMT.history(completion, calls, [Observation(text="ok"), Observation(text="a.py\nb.py")])
    assert history == [
        {"role": "assistant", "content": text.removesuffix("</s>")},
        {
            "role": "user",
            "content": "EXECUTION RESULT of [think]:\nok\n\nEXECUTION RESULT of [execute_bash]:\na.py\nb.py",
        },
    ]


def test_history_of_format_error(tools):
    completion = Completion(content="hello")
    history = FMT.history(completion, [], [Observation(text="No tool call found.", is_error=True)])
    assert history[1] == {"role": "user", "content": "ERROR:\nNo tool call found."}


def test_render_tools_describes_tools_and_example_parses(tools):
    text = FMT.render_tools(tools)
    for spec in tools:
        assert f"## {spec.name}" in text
    assert "- command (string, required): The bash command to run." in text
    assert "- timeout (integer, optional)" in text
    assert '"view", "create", "str_replace", "insert", "undo_edit"' in text
    assert "- view_range (array of integer, optional)" in text
    example = next(line for line in text.splitlines() if line.startswith("[TOOL_CALLS]execute_bash"))
    assert FMT.parse(Completion(content=example), tools)[0].name == "execute_bash"


def test_ids_are_stable(tools):
    text = '[TOOL_CALLS]think[ARGS]{"thought": "a"}'
    assert parse(text, tools)[0].id == parse(text, tools)[0].id
    assert isinstance(parse(text, tools)[0], ToolCall)
