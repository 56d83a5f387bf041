from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from logline.timeparse import parse_clf_time, parse_iso_time

_COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?$'
)


class ParseError(ValueError):
    """A line is not in a known format. `lineno` is 1-based when known."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        self.lineno = lineno
        super().__init__(f"line {lineno}: {message}" if lineno else message)


@dataclass(frozen=True)
class LogRecord:
    ip: str
    time: datetime
    method: str
    path: str
    status: int
    size: int
    user: str | None = None
    referer: str | None = None
    agent: str | None = None


def _dash(value: str | None) -> str | None:
    return None if value in (None, "-", "") else value


def _parse_json(line: str) -> LogRecord:
    try:
        data = json.loads(line)
        return LogRecord(
            ip=data["remote_addr"],
            time=parse_iso_time(data["time"]),
            method=data["method"],
            path=data["path"],
            status=int(data["status"]),
            size=int(data.get("bytes") or 0),
            user=_dash(data.get("user")),
            referer=_dash(data.get("referer")),
            agent=_dash(data.get("user_agent")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"bad JSON log line: {exc}") from None


def parse_line(line: str) -> LogRecord:
    """Parse one combined-format or JSON log line."""
    line = line.strip()
    if line.startswith("{"):
        return _parse_json(line)
    match = _COMBINED.match(line)
    if not match:
        raise ParseError(f"unrecognised log line: {line[:80]!r}")
    g = match.groupdict()
    return LogRecord(
        ip=g["ip"],
        time=parse_clf_time(g["time"]),
        method=g["method"],
        path=g["path"],
        status=int(g["status"]),
        size=0 if g["size"] == "-" else int(g["size"]),
        user=_dash(g["user"]),
        referer=_dash(g["referer"]),
        agent=_dash(g["agent"]),
    )


def parse_file(lines: Iterable[str], skip_invalid: bool = False) -> Iterator[LogRecord]:
    """Parse every non-blank line; invalid lines raise ParseError (with line number) unless skipped."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except ParseError as exc:
            if not skip_invalid:
                raise ParseError(str(exc), lineno) from None
