"""Filters that are less often used: loaded lazily by tinytpl.filters.get_filter."""

from __future__ import annotations

import json
import pprint
from collections import Mapping, Sequence
from typing import Any

from tinytpl.errors import TemplateError
from tinytpl.filters import Markup


def _tojson(value: Any, indent: int | None = None) -> Markup:
    # Escape characters that could end a <script> block when the JSON is embedded in HTML.
    text = json.dumps(value, indent=indent, sort_keys=True, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _dictsort(value: Any, by: str = "key") -> list[tuple[Any, Any]]:
    if not isinstance(value, Mapping):
        raise TemplateError(f"dictsort expects a mapping, got {type(value).__name__}")
    index = 0 if by == "key" else 1
    return sorted(value.items(), key=lambda kv: kv[index])


def _first(value: Any) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value[0] if value else None
    return next(iter(value), None)


FILTERS = {
    "tojson": _tojson,
    "dictsort": _dictsort,
    "pprint": lambda v: pprint.pformat(v, width=60),
    "first": _first,
}
