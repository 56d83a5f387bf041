from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tablemd.cells import format_cell, pad, separator
from tablemd.width import display_width, truncate


def render(
    headers: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    precision: int | None = None,
    max_width: int | None = None,
) -> str:
    """A Markdown table; every column is as wide as its widest cell.

    Rows shorter than the header are padded with empty cells; longer rows raise ValueError.
    `max_width` truncates cells wider than that many columns.
    """
    head = [format_cell(h) for h in headers]
    if not head:
        raise ValueError("a table needs at least one column")
    body = []
    for n, row in enumerate(rows, start=1):
        cells = [format_cell(v, precision) for v in row]
        if len(cells) > len(head):
            raise ValueError(f"row {n} has {len(cells)} cells but there are {len(head)} columns")
        body.append(cells + [""] * (len(head) - len(cells)))
    if max_width is not None:
        head = [truncate(c, max_width) for c in head]
        body = [[truncate(c, max_width) for c in row] for row in body]
    widths = [max(3, *(display_width(r[i]) for r in [head, *body])) for i in range(len(head))]
    lines = [_line([pad(c, w) for c, w in zip(head, widths)])]
    lines.append(_line([separator(w) for w in widths]))
    for row in body:
        lines.append(_line([pad(c, w) for c, w in zip(row, widths)]))
    return "\n".join(lines) + "\n"


def render_dicts(records: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, **options: Any) -> str:
    """Render mappings; columns default to the keys in first-seen order."""
    records = list(records)
    if columns is None:
        seen: dict[str, None] = {}
        for rec in records:
            seen.update(dict.fromkeys(rec))
        columns = list(seen)
    return render(columns, ([rec.get(c) for c in columns] for rec in records), **options)


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
