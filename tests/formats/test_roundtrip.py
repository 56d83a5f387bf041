"""render_call -> parse gives back the same calls, in every format, with hostile values."""

import pytest

from devloop.formats import FORMAT_NAMES, get_format, render_call
from devloop.types import Completion, ToolCall

NASTY = [
    "say \"hi\" and 'bye'",
    "braces {} {{x}} and brackets [1, [2]] ]] [[",
    "back\\slash \\n \\\\ \\u00e9 C:\\temp\\",
    "unicode: é ü 中文 🚀 \u2028 \x00",
    "crlf\r\nline two\r\n",
    "\ttabs\tinside\t",
    "",
    "\nleading and trailing newlines\n\n",
    "   spaces   ",
    "</s>[TOOL_CALLS]x[ARGS]{} <tool_call>{}</tool_call> <function=x>",
    "def f():\n    return {'a': [1, 2]}  # }]\n",
    "\r",
    "\n",
]

CALLS = [
    *[ToolCall(name="execute_bash", arguments={"command": value}) for value in NASTY],
    ToolCall(name="execute_bash", arguments={"command": "sleep 100", "timeout": 30}),
    ToolCall(
        name="str_replace_editor",
        arguments={"command": "view", "path": "/repo/a b/ç.py", "view_range": [1, -1]},
    ),
    ToolCall(
        name="str_replace_editor",
        arguments={"command": "insert", "path": "/a.py", "insert_line": 5, "new_str": NASTY[10]},
    ),
    ToolCall(
        name="str_replace_editor",
        arguments={"command": "str_replace", "path": "/a.py", "old_str": NASTY[0], "new_str": NASTY[4]},
    ),
    ToolCall(name="finish", arguments={"message": NASTY[3]}),
]


def _completion(fmt: str, calls: list[ToolCall]) -> Completion:
    rendered = [render_call(fmt, call) for call in calls]
    if fmt in ("native", "auto"):
        return Completion(content=None, tool_calls=rendered)
    return Completion(content="Some reasoning first.\n" + "\n".join(rendered))


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.name}-{sorted(c.arguments)}")
def test_single_call_round_trip(fmt, call, tools):
    parsed = get_format(fmt).parse(_completion(fmt, [call]), tools)
    assert [(p.name, p.arguments) for p in parsed] == [(call.name, call.arguments)]


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_many_calls_round_trip(fmt, tools):
    parsed = get_format(fmt).parse(_completion(fmt, CALLS), tools)
    assert [(p.name, p.arguments) for p in parsed] == [(c.name, c.arguments) for c in CALLS]
    assert len({p.id for p in parsed}) == len(CALLS)


@pytest.mark.parametrize("fmt", ["mistral", "xml", "hermes"])
def test_text_formats_round_trip_through_auto(fmt, tools):
    parsed = get_format("auto").parse(_completion(fmt, CALLS), tools)
    assert [(p.name, p.arguments) for p in parsed] == [(c.name, c.arguments) for c in CALLS]
