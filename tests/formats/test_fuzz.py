"""Garbage in never escapes as anything but FormatError (the loop shows that text to the model)."""

import random

import pytest

from devloop.formats import FORMAT_NAMES, FormatError, get_format
from devloop.types import Completion

PIECES = [
    "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<function=", "</function>", "<parameter=", "</parameter>",
    "<tool_call>", "</tool_call>", "execute_bash", "think", "str_replace_editor", "view_range", "command",
    "thought", "{", "}", "[", "]", '"', ":", ",", ">", "\n", " ", "1", "null", "</s>", "\\", "x",
]  # fmt: skip


def garbage(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_random_replies_raise_only_format_error(fmt, tools):
    rng = random.Random(fmt)
    parser = get_format(fmt)
    for _ in range(1500):
        text = garbage(rng)
        native_calls = [{"id": "a", "type": "function", "function": {"name": "think", "arguments": text}}]
        completion = Completion(
            content=text, tool_calls=native_calls if fmt == "native" and rng.random() < 0.5 else []
        )
        try:
            calls = parser.parse(completion, tools)
        except FormatError as err:
            assert str(err)
            continue
        assert calls and all(c.name in {t.name for t in tools} for c in calls)
        assert parser.history(completion, calls, [])[0]["role"] == "assistant"
