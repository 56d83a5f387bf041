from __future__ import annotations

from collections.abc import Mapping


def page_from_query(params: Mapping[str, str | list[str]], total: int, name: str = "page") -> int:
    """The requested page from query parameters, clamped to 1..total; bad values mean page 1."""
    raw = params.get(name)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        page = int(str(raw).strip())
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), max(total, 1))
