from typing import Any

import pytest

from devloop.formats import FORMAT_NAMES, FormatError, format_names, get_format, register_format, render_call
from devloop.types import ToolCall


@pytest.mark.parametrize(
    ("name", "native"),
    [("native", True), ("mistral", False), ("xml", False), ("hermes", False), ("auto", True)],
)
def test_get_format_returns_named_format(name, native):
    fmt = get_format(name)
    assert fmt.name == name
    assert fmt.native is native
    for method in ("render_tools", "parse", "history"):
        assert callable(getattr(fmt, method))


def test_get_format_ignores_case_and_spaces():
    assert get_format(" XML ").name == "xml"


def test_unknown_format_lists_valid_names_on_one_line():
    with pytest.raises(ValueError) as info:
        get_format("json")
    message = str(info.value)
    assert "'json'" in message
    assert "\n" not in message
    for name in FORMAT_NAMES:
        assert name in message


def test_format_names_are_the_five_formats():
    assert set(FORMAT_NAMES) == {"native", "mistral", "xml", "hermes", "auto"}


def test_render_call_types():
    call = ToolCall(name="think", arguments={"thought": "hm"})
    native = render_call("native", call)
    assert isinstance(native, dict)
    assert native["function"]["name"] == "think"
    assert render_call("auto", call)["type"] == "function"
    assert render_call("mistral", call) == '[TOOL_CALLS]think[ARGS]{"thought": "hm"}'
    assert render_call("xml", call) == "<function=think>\n<parameter=thought>hm</parameter>\n</function>"
    assert (
        render_call("hermes", call)
        == '<tool_call>\n{"name": "think", "arguments": {"thought": "hm"}}\n</tool_call>'
    )


def test_render_call_keeps_given_id():
    call = ToolCall(name="think", arguments={"thought": "x"}, id="abc123XYZ")
    assert render_call("native", call)["id"] == "abc123XYZ"


def test_render_call_unknown_format():
    with pytest.raises(ValueError, match="valid formats"):
        render_call("yaml", ToolCall(name="think", arguments={}))


def test_format_error_is_exported():
    assert issubclass(FormatError, Exception)


def test_a_registered_text_format_is_found_by_name_and_tried_by_auto() -> None:
    from devloop.formats.registry import _REGISTRY
    from devloop.formats.xml import XmlFormat
    from devloop.types import Completion

    class AtFormat(XmlFormat):  # `@@tool key=value`, a shape no shipped format reads
        name = "at"

        def detects(self, text: str, tools: list[Any]) -> bool:
            return text.startswith("@@")

        def parse(self, completion: Completion, tools: list[Any]) -> list[ToolCall]:
            tool, _, arg = (completion.content or "")[2:].partition(" ")
            key, _, value = arg.partition("=")
            return [ToolCall(name=tool, arguments={key: value})]

    register_format("at", AtFormat)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_format("at", AtFormat)
        assert "at" in format_names() and get_format("AT").name == "at"
        calls = get_format("auto").parse(Completion(content="@@think thought=hm"), [])
        assert calls == [ToolCall(name="think", arguments={"thought": "hm"})]
    finally:
        del _REGISTRY["at"]
    assert "at" not in format_names()
    with pytest.raises(FormatError):
        get_format("auto").parse(Completion(content="@@think thought=hm"), [])
