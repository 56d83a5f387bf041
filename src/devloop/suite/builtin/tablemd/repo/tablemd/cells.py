from __future__ import annotations

from decimal import Decimal
from typing import Any

from tablemd.width import display_width


def format_cell(value: Any, precision: int | None = None) -> str:
    """Text for one cell: None is empty, bools are lower-case, floats use `precision` if given.

    Pipes are escaped and line breaks become <br> so the table stays on one line per row.
    """
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (float, Decimal)) and precision is not None:
        text = f"{value:.{precision}f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def pad(text: str, width: int) -> str:
    """Left-align `text` in `width` display columns."""
    return text + " " * (width - display_width(text))


def separator(width: int) -> str:
    """The header separator for a column of `width` (at least three dashes)."""
    return "-" * max(width, 3)
