from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """How a file is laid out."""

    delimiter: str = ","
    quotechar: str = '"'
    skip_initial_space: bool = False
    line_terminator: str = "\r\n"

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1:
            raise ValueError("delimiter must be a single character")
        if len(self.quotechar) != 1:
            raise ValueError("quotechar must be a single character")
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")


EXCEL = Dialect()
TSV = Dialect(delimiter="\t")
