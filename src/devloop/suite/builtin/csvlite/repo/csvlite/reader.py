from __future__ import annotations

from collections.abc import Iterable, Iterator

from csvlite.dialect import EXCEL, Dialect
from csvlite.errors import CsvError


class _Tokenizer:
    """Splits physical lines into fields, one record at a time."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def split(self, line: str, lineno: int) -> list[str]:
        d = self.d
        fields: list[str] = []
        field: list[str] = []
        in_quotes = False
        quoted = False  # the current field started with a quote
        i = 0
        while i < len(line):
            ch = line[i]
            if in_quotes:
                if ch == d.quotechar:
                    if i + 1 < len(line) and line[i + 1] == d.quotechar:
                        field.append(ch)
                        i += 1
                    else:
                        in_quotes = False
                else:
                    field.append(ch)
            elif ch == d.delimiter:
                fields.append("".join(field))
                field, quoted = [], False
            elif ch == d.quotechar and not field and not quoted:
                in_quotes = quoted = True
            elif ch == " " and d.skip_initial_space and not field and not quoted:
                pass
            elif quoted:
                raise CsvError(f"unexpected {ch!r} after closing quote", lineno)
            else:
                field.append(ch)
            i += 1
        if in_quotes:
            raise CsvError("unterminated quoted field", lineno)
        fields.append("".join(field))
        return fields


def parse_line(line: str, dialect: Dialect = EXCEL) -> list[str]:
    """Split one line (without its terminator) into fields."""
    return _Tokenizer(dialect).split(line.rstrip("\r\n"), 1)


def read_rows(lines: Iterable[str], dialect: Dialect = EXCEL) -> Iterator[list[str]]:
    """Yield each record of `lines` (an open file or a list of lines) as a list of fields.

    Blank lines are skipped.
    """
    tokenizer = _Tokenizer(dialect)
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        yield tokenizer.split(line, lineno)


class DictReader:
    """Read records as dicts keyed by the header row (or by `fieldnames`)."""

    def __init__(
        self,
        lines: Iterable[str],
        fieldnames: list[str] | None = None,
        dialect: Dialect = EXCEL,
        restval: str | None = None,
        strict: bool = False,
    ) -> None:
        self._rows = read_rows(lines, dialect)
        self.fieldnames = fieldnames
        self.restval = restval
        self.strict = strict

    def __iter__(self) -> Iterator[dict[str, str | None]]:
        if self.fieldnames is None:
            try:
                self.fieldnames = next(self._rows)
            except StopIteration:
                return
        names = self.fieldnames
        for n, row in enumerate(self._rows, start=1):
            if self.strict and len(row) != len(names):
                raise CsvError(f"record {n} has {len(row)} fields, header has {len(names)}")
            record: dict[str, str | None] = dict(zip(names, row))
            for name in names[len(row):]:
                record[name] = self.restval
            yield record
