"""What a reviewer reads of a test log: each failing test's error lines, and the log's last lines.

The log is what the repository's tests printed with the model's patch applied, so it is model-influenced
text: it is only ever shown escaped. pytest's report is read for its FAILURES / ERRORS sections (the `E `
lines and the `file:line: Error` line under each test's header); with no such section (`--tb=no`, another
runner) its short summary's FAILED / ERROR lines are used, and the log's tail is shown either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$")
_ANY_SECTION = re.compile(r"^=+ .+ =+$")
_HEADER = re.compile(r"^_{3,} (.+?) _{3,}$")
_LOCATION = re.compile(r"^\S+:\d+: \w[\w.]*$")
_SHORT = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")


@dataclass
class Failure:
    test: str
    lines: list[str] = field(default_factory=list)
    more: int = 0
    """Error lines left out past the limit."""


@dataclass
class LogView:
    failures: list[Failure]
    tail: list[str]
    total_lines: int
    more_failures: int = 0


def failure_summary(log: str, *, max_failures: int = 20, max_lines: int = 12, tail: int = 80) -> LogView:
    lines = log.splitlines()
    failures: list[Failure] = []
    current: Failure | None = None
    in_section = False
    for line in lines:
        if _SECTION.match(line):
            in_section, current = True, None
        elif _ANY_SECTION.match(line):
            in_section, current = False, None
        elif in_section and (m := _HEADER.match(line)):
            current = Failure(m.group(1))
            failures.append(current)
        elif current is not None and (line.startswith("E ") or _LOCATION.match(line)):
            if len(current.lines) < max_lines:
                current.lines.append(line)
            else:
                current.more += 1
    if not failures:
        for line in lines:
            if m := _SHORT.match(line):
                failures.append(Failure(m.group(2), [m.group(3)] if m.group(3) else []))
    return LogView(failures[:max_failures], lines[-tail:], len(lines), max(0, len(failures) - max_failures))
