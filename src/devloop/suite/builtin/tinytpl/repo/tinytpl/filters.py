from __future__ import annotations

import html
from typing import Any

from tinytpl.errors import TemplateError


class Markup(str):
    """Text that is already safe HTML and must not be escaped again."""


def escape(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def _default(value: Any, fallback: Any = "") -> Any:
    return fallback if value is None or value == "" else value


def _join(value: Any, sep: str = ", ") -> str:
    return sep.join(str(v) for v in value)


def _truncate(value: Any, length: int = 20) -> str:
    text = str(value)
    return text if len(text) <= length else text[: max(length - 1, 0)] + "…"


BUILTIN_FILTERS = {
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
    "title": lambda v: str(v).title(),
    "length": len,
    "default": _default,
    "join": _join,
    "truncate": _truncate,
    "escape": escape,
    "safe": lambda v: Markup(str(v)),
}

_extra_loaded = False


def get_filter(name: str):
    """The filter function called `name`; the extra filters module is imported on first miss."""
    global _extra_loaded
    if name not in BUILTIN_FILTERS and not _extra_loaded:
        from tinytpl import filters_extra

        BUILTIN_FILTERS.update(filters_extra.FILTERS)
        _extra_loaded = True
    try:
        return BUILTIN_FILTERS[name]
    except KeyError:
        raise TemplateError(f"unknown filter {name!r}") from None
