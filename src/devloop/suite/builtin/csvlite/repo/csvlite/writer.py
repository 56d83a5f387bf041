from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from csvlite.dialect import EXCEL, Dialect


def _needs_quotes(value: str, d: Dialect) -> bool:
    return (
        value == ""
        or d.delimiter in value
        or d.quotechar in value
        or "\n" in value
        or "\r" in value
        or value != value.strip(" ")
    )


def format_field(value: Any, dialect: Dialect = EXCEL) -> str:
    text = "" if value is None else str(value)
    if not _needs_quotes(text, dialect):
        return text
    q = dialect.quotechar
    return q + text.replace(q, q + q) + q


def format_row(row: Iterable[Any], dialect: Dialect = EXCEL) -> str:
    """One record as text, without the line terminator."""
    return dialect.delimiter.join(format_field(v, dialect) for v in row)


def write_rows(out: TextIO, rows: Iterable[Iterable[Any]], dialect: Dialect = EXCEL) -> int:
    """Write every row to `out`; returns the number of records written."""
    count = 0
    for row in rows:
        out.write(format_row(row, dialect) + dialect.line_terminator)
        count += 1
    return count
