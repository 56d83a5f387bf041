"""Format lookup by name, and rendering a call in any format (for scripted models and tests)."""

from __future__ import annotations

from typing import Any

from devloop.formats.auto import AutoFormat
from devloop.formats.base import ToolFormat
from devloop.formats.hermes import HermesFormat, render_hermes_call
from devloop.formats.mistral import MistralFormat, render_mistral_call
from devloop.formats.native import NativeFormat, render_native_call
from devloop.formats.xml import XmlFormat, render_xml_call
from devloop.types import ToolCall

FORMAT_NAMES: tuple[str, ...] = ("native", "mistral", "xml", "hermes", "auto")

_FORMATS: dict[str, type[ToolFormat]] = {
    "native": NativeFormat,
    "mistral": MistralFormat,
    "xml": XmlFormat,
    "hermes": HermesFormat,
    "auto": AutoFormat,
}


def _canonical(name: str) -> str:
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _FORMATS:
        raise ValueError(f"unknown tool-call format {name!r}; valid formats: {', '.join(FORMAT_NAMES)}")
    return key


def get_format(name: str) -> ToolFormat:
    """The format called `name` (native, mistral, xml, hermes or auto); ValueError for any other."""
    return _FORMATS[_canonical(name)]()


def render_call(format_name: str, call: ToolCall) -> str | dict[str, Any]:
    """`call` as the model would write it in `format_name`: reply text, or for native and auto the
    OpenAI `tool_calls` entry (a dict)."""
    key = _canonical(format_name)
    if key in ("native", "auto"):
        return render_native_call(call)
    if key == "mistral":
        return render_mistral_call(call)
    if key == "xml":
        return render_xml_call(call)
    return render_hermes_call(call)
