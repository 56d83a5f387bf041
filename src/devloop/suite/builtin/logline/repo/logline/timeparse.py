"""Timestamp parsing for the formats found in access logs."""

from __future__ import annotations

from datetime import datetime

try:  # ciso8601 is a fast C parser for ISO-8601; it is optional.
    import ciso8601
except ImportError:
    ciso8601 = None

CLF_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


def parse_clf_time(text: str) -> datetime:
    """'10/Oct/2023:13:55:36 -0700' -> aware datetime."""
    return datetime.strptime(text, CLF_FORMAT)


def parse_iso_time(text: str) -> datetime:
    """ISO-8601 timestamps as written by JSON loggers, e.g. '2023-10-10T13:55:36.123Z'."""
    value = ciso8601.parse_datetime(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp without timezone: {text!r}")
    return value
