import pytest

from devloop.formats import FormatError, get_format
from devloop.types import Completion, Observation

FMT = get_format("xml")


def parse(text, tools):
    return FMT.parse(Completion(content=text), tools)


def pairs(calls):
    return [(c.name, c.arguments) for c in calls]


CREATE = """There is no app.py yet. Let me create it:
<function=str_replace_editor>
<parameter=command>create</parameter>
<parameter=path>/workspace/app.py</parameter>
<parameter=file_text>

from flask import Flask
app = Flask(__name__)

if __name__ == '__main__':
\tapp.run(port=5000)

</parameter>
</function>"""


def test_openhands_reply_keeps_multiline_value_verbatim(tools):
    calls = parse(CREATE, tools)
    assert pairs(calls) == [
        (
            "str_replace_editor",
            {
                "command": "create",
                "path": "/workspace/app.py",
                "file_text": "\nfrom flask import Flask\napp = Flask(__name__)\n\n"
                "if __name__ == '__main__':\n\tapp.run(port=5000)\n",
            },
        )
    ]
    assert calls[0].raw.startswith("<function=str_replace_editor>")
    assert calls[0].raw.endswith("</function>")


def test_schema_conversion_of_arrays_and_integers(tools):
    text = (
        "<function=str_replace_editor>\n<parameter=command>view</parameter>\n"
        "<parameter=path>/a.py</parameter>\n<parameter=view_range>[1, 20]</parameter>\n</function>\n"
        "<function=str_replace_editor>\n<parameter=command>insert</parameter>\n"
        "<parameter=path>/a.py</parameter>\n<parameter=insert_line>\n5\n</parameter>\n"
        "<parameter=new_str>x = 1</parameter>\n</function>\n"
        "<function=execute_bash>\n<parameter=command>sleep 1</parameter>\n<parameter=timeout>30</parameter>\n</function>"
    )
    assert pairs(parse(text, tools)) == [
        ("str_replace_editor", {"command": "view", "path": "/a.py", "view_range": [1, 20]}),
        ("str_replace_editor", {"command": "insert", "path": "/a.py", "insert_line": 5, "new_str": "x = 1"}),
        ("execute_bash", {"command": "sleep 1", "timeout": 30}),
    ]


def test_string_parameters_are_never_converted(tools):
    text = "<function=execute_bash>\n<parameter=command>42</parameter>\n</function>"
    assert parse(text, tools)[0].arguments == {"command": "42"}


def test_null_for_optional_integer(tools):
    text = "<function=execute_bash>\n<parameter=command>ls</parameter>\n<parameter=timeout>null</parameter>\n</function>"
    assert parse(text, tools)[0].arguments == {"command": "ls", "timeout": None}


def test_only_one_newline_stripped_each_side(tools):
    text = "<function=think>\n<parameter=thought>\n\n  indented\n\n</parameter>\n</function>"
    assert parse(text, tools)[0].arguments == {"thought": "\n  indented\n"}


def test_missing_function_close_is_tolerated(tools):
    text = "Run it.\n<function=execute_bash>\n<parameter=command>\npytest -x\n</parameter>\n"
    assert pairs(parse(text, tools)) == [("execute_bash", {"command": "pytest -x"})]
    assert pairs(parse(text + "</func", tools)) == [("execute_bash", {"command": "pytest -x"})]
    assert pairs(parse(text + "</function>\n</s>", tools)) == [("execute_bash", {"command": "pytest -x"})]


def test_parameter_close_lookalike_inside_value(tools):
    text = (
        "<function=str_replace_editor>\n<parameter=command>create</parameter>\n"
        "<parameter=path>/t.xml</parameter>\n<parameter=file_text>\n"
        "a </parameter> b\n</function> c\n</parameter>\n</function>"
    )
    assert parse(text, tools)[0].arguments["file_text"] == "a </parameter> b\n</function> c"


def test_qwen_coder_tool_call_wrapper(tools):
    text = "<tool_call>\n<function=execute_bash>\n<parameter=command>\nls\n</parameter>\n</function>\n</tool_call>"
    assert pairs(parse(text, tools)) == [("execute_bash", {"command": "ls"})]


def test_crlf_and_tabs_kept(tools):
    text = "<function=think>\n<parameter=thought>a\r\n\tb\r</parameter>\n</function>"
    assert parse(text, tools)[0].arguments == {"thought": "a\r\n\tb\r"}


def test_stray_text_in_body_is_skipped(tools):
    text = "<function=execute_bash>\nhere goes:\n<parameter=command>ls</parameter>\n</function>"
    assert parse(text, tools)[0].arguments == {"command": "ls"}


def test_no_call(tools):
    with pytest.raises(FormatError) as info:
        parse("I believe the answer is 42.", tools)
    message = str(info.value)
    assert message.startswith("No tool call found in your reply.")
    assert "<function=TOOL_NAME>" in message and "</function>" in message
    assert "<function=execute_bash><parameter=command>ls -la</parameter></function>" in message


def test_unknown_tool(tools):
    with pytest.raises(FormatError, match="Unknown tool 'run'. Available tools: execute_bash"):
        parse("<function=run>\n<parameter=command>ls</parameter>\n</function>", tools)


def test_missing_required_parameter(tools):
    with pytest.raises(FormatError) as info:
        parse("<function=str_replace_editor>\n<parameter=command>view</parameter>\n</function>", tools)
    message = str(info.value)
    assert "missing required parameter 'path'" in message
    assert "'str_replace_editor'" in message
    assert "path (string, required)" in message


def test_unknown_parameter(tools):
    with pytest.raises(FormatError, match="unknown parameter 'cmd' \\(did you mean 'command'\\?\\)"):
        parse(
            "<function=execute_bash>\n<parameter=command>ls</parameter>\n<parameter=cmd>x</parameter>\n</function>",
            tools,
        )


def test_invalid_array_quotes_json_position(tools):
    with pytest.raises(FormatError) as info:
        parse(
            "<function=str_replace_editor>\n<parameter=command>view</parameter>\n"
            "<parameter=path>/a</parameter>\n<parameter=view_range>[1, 20</parameter>\n</function>",
            tools,
        )
    message = str(info.value)
    assert "parameter 'view_range'" in message
    assert "line 1, column 7, character 6" in message
    assert "[1, 20]" in message


def test_array_expected_but_object_given(tools):
    with pytest.raises(FormatError, match="'view_range'.*array of integer"):
        parse(
            "<function=str_replace_editor>\n<parameter=command>view</parameter>\n"
            '<parameter=path>/a</parameter>\n<parameter=view_range>{"a": 1}</parameter>\n</function>',
            tools,
        )


def test_invalid_integer(tools):
    with pytest.raises(
        FormatError,
        match="'insert_line' of tool 'str_replace_editor' expects a value of type integer, got 'five'",
    ):
        parse(
            "<function=str_replace_editor>\n<parameter=command>insert</parameter>\n"
            "<parameter=path>/a</parameter>\n<parameter=insert_line>five</parameter>\n</function>",
            tools,
        )


def test_unclosed_parameter(tools):
    with pytest.raises(FormatError, match="Parameter 'command' of your call to 'execute_bash' is not closed"):
        parse("<function=execute_bash>\n<parameter=command>ls\n", tools)


def test_duplicate_parameter(tools):
    with pytest.raises(FormatError, match="'command' is given twice"):
        parse(
            "<function=execute_bash>\n<parameter=command>ls</parameter>\n<parameter=command>pwd</parameter>\n</function>",
            tools,
        )


def test_history_closes_cut_off_call(tools):
    text = "Run.\n<function=execute_bash>\n<parameter=command>ls</parameter>\n"
    completion = Completion(content=text)
    history = FMT.history(completion, FMT.parse(completion, tools), [Observation(text="a.py")])
    assert history == [
        {
            "role": "assistant",
            "content": "Run.\n<function=execute_bash>\n<parameter=command>ls</parameter>\n</function>",
        },
        {"role": "user", "content": "EXECUTION RESULT of [execute_bash]:\na.py"},
    ]
    partial = FMT.history(Completion(content=text + "</func"), [], [])
    assert partial[0]["content"].endswith("</parameter>\n</function>")
    assert len(partial) == 1


def test_render_tools_example_parses(tools):
    text = FMT.render_tools(tools)
    assert "<function=tool_name>" in text
    assert "- path (string, required)" in text
    example = text[text.index("<function=execute_bash>") :]
    example = example[: example.index("</function>") + len("</function>")]
    assert pairs(parse(example, tools)) == [("execute_bash", {"command": "ls -la"})]
