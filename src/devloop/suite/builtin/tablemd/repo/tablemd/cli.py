"""`python -m tablemd.cli < data.csv` prints the CSV as a Markdown table."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence

from tablemd.table import render


def main(argv: Sequence[str] | None = None, stdin=None, stdout=None) -> int:
    parser = argparse.ArgumentParser(prog="tablemd", description=__doc__)
    parser.add_argument("--delimiter", default=",", help="CSV field delimiter")
    parser.add_argument("--max-width", type=int, default=None, help="truncate cells to this many columns")
    args = parser.parse_args(argv)
    rows = list(csv.reader(stdin or sys.stdin, delimiter=args.delimiter))
    out = stdout or sys.stdout
    if not rows:
        print("tablemd: no input", file=sys.stderr)
        return 1
    try:
        out.write(render(rows[0], rows[1:], max_width=args.max_width))
    except ValueError as exc:
        print(f"tablemd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
