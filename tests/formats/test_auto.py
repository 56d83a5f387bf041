import pytest

from devloop.formats import FormatError, get_format
from devloop.types import Completion, Observation

FMT = get_format("auto")


def pairs(calls):
    return [(c.name, c.arguments) for c in calls]


def test_flags_and_render(tools):
    assert FMT.native is True
    assert FMT.render_tools(tools) == ""


def test_native_tool_calls_win_over_text(tools):
    completion = Completion(
        content="<function=think>\n<parameter=thought>text</parameter>\n</function>",
        tool_calls=[
            {
                "id": "n1",
                "type": "function",
                "function": {"name": "think", "arguments": '{"thought": "native"}'},
            }
        ],
    )
    assert pairs(FMT.parse(completion, tools)) == [("think", {"thought": "native"})]
    history = FMT.history(completion, FMT.parse(completion, tools), [Observation(text="ok")])
    assert history[1] == {"role": "tool", "tool_call_id": "n1", "content": "ok"}


@pytest.mark.parametrize(
    "text",
    [
        '[TOOL_CALLS]think[ARGS]{"thought": "t"}</s>',
        "<function=think>\n<parameter=thought>t</parameter>\n</function>",
        '<tool_call>\n{"name": "think", "arguments": {"thought": "t"}}\n</tool_call>',
    ],
    ids=["mistral", "xml", "hermes"],
)
def test_text_formats_are_read(tools, text):
    assert pairs(FMT.parse(Completion(content=text), tools)) == [("think", {"thought": "t"})]


def test_mistral_is_tried_before_xml(tools):
    text = '[TOOL_CALLS]think[ARGS]{"thought": "m"}\n<function=think>\n<parameter=thought>x</parameter>\n</function>'
    assert pairs(FMT.parse(Completion(content=text), tools)) == [("think", {"thought": "m"})]


def test_xml_is_tried_before_hermes(tools):
    text = '<function=think>\n<parameter=thought>x</parameter>\n</function>\n<tool_call>{"name": "think", "arguments": {"thought": "h"}}</tool_call>'
    assert pairs(FMT.parse(Completion(content=text), tools)) == [("think", {"thought": "x"})]


def test_falls_through_when_an_earlier_format_fails(tools):
    text = "<function=think>\n<parameter=thought>the model printed [TOOL_CALLS] here</parameter>\n</function>"
    assert pairs(FMT.parse(Completion(content=text), tools)) == [
        ("think", {"thought": "the model printed [TOOL_CALLS] here"})
    ]


def test_first_detected_format_error_is_reported(tools):
    with pytest.raises(FormatError, match="Invalid JSON in the arguments of your call to 'think'"):
        FMT.parse(Completion(content='[TOOL_CALLS]think[ARGS]{"thought": }'), tools)


def test_no_call_at_all(tools):
    with pytest.raises(FormatError) as info:
        FMT.parse(Completion(content="Done."), tools)
    assert "function-calling interface" in str(info.value)


def test_text_history(tools):
    completion = Completion(content='[TOOL_CALLS]think[ARGS]{"thought": "t"}</s>')
    history = FMT.history(completion, FMT.parse(completion, tools), [Observation(text="ok")])
    assert history == [
        {"role": "assistant", "content": '[TOOL_CALLS]think[ARGS]{"thought": "t"}'},
        {"role": "user", "content": "EXECUTION RESULT of [think]:\nok"},
    ]
    plain = FMT.history(
        Completion(content="hm"), [], [Observation(text="No tool call found.", is_error=True)]
    )
    assert plain[1] == {"role": "user", "content": "ERROR:\nNo tool call found."}
