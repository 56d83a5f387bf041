"""Formats by name: `get_format(name)`, `register_format(name, cls)`, and rendering a call in any format."""

from __future__ import annotations

from typing import Any

from devloop.formats.auto import AutoFormat
from devloop.formats.base import ToolFormat
from devloop.formats.hermes import HermesFormat
from devloop.formats.mistral import MistralFormat
from devloop.formats.native import NativeFormat
from devloop.formats.xml import XmlFormat
from devloop.types import ToolCall

# In this order auto tries the text formats on a reply without native tool calls.
_REGISTRY: dict[str, type[ToolFormat]] = {
    "native": NativeFormat,
    "mistral": MistralFormat,
    "xml": XmlFormat,
    "hermes": HermesFormat,
    "auto": AutoFormat,
}


def register_format(name: str, cls: type[ToolFormat], *, replace: bool = False) -> None:
    """Make `cls()` available to get_format under `name`; a text format is also tried by auto."""
    key = name.strip().lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"tool-call format {name!r} is already registered")
    _REGISTRY[key] = cls


def format_names() -> tuple[str, ...]:
    """The names get_format accepts, in registration order."""
    return tuple(_REGISTRY)


def text_formats() -> list[ToolFormat]:
    """One of each registered format that reads calls from the reply text, in registration order."""
    return [cls() for cls in _REGISTRY.values() if not cls.native]


def get_format(name: str) -> ToolFormat:
    """The format registered as `name` (case-insensitive); ValueError for any other."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _REGISTRY:
        raise ValueError(f"unknown tool-call format {name!r}; valid formats: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]()


def render_call(format_name: str, call: ToolCall) -> str | dict[str, Any]:
    """`call` as the model would write it in `format_name` (for scripted models and tests)."""
    return get_format(format_name).render_call(call)


FORMAT_NAMES: tuple[str, ...] = format_names()
