"""A small CSV reader and writer."""

from csvlite.dialect import EXCEL, TSV, Dialect
from csvlite.errors import CsvError
from csvlite.reader import DictReader, parse_line, read_rows
from csvlite.sniff import sniff_delimiter
from csvlite.writer import format_row, write_rows

__all__ = [
    "EXCEL",
    "TSV",
    "CsvError",
    "Dialect",
    "DictReader",
    "format_row",
    "parse_line",
    "read_rows",
    "sniff_delimiter",
    "write_rows",
]
