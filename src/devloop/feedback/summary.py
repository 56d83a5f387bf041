"""The failure summary the model reads in its very next request: progress first, then each failure.

Detail degrades in steps until the text fits the token budget: all frames and output, then fewer frames and
shorter values, then only the message and the failing line, then only the first failures (the rest named
in one line), and last a hard cut. The progress line always comes first, so it survives any budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devloop.feedback.base import FailureDetail, TestReport
from devloop.feedback.tokens import count_tokens, trim_to_tokens

HEADER = "[test hook]"


@dataclass(frozen=True)
class _Detail:
    frames: int
    locals: int
    value_chars: int
    output_chars: int
    message_lines: int
    max_failures: int


# From the richest rendering to the barest; the first that fits the budget is used.
_LEVELS = (
    _Detail(frames=4, locals=10, value_chars=120, output_chars=600, message_lines=12, max_failures=20),
    _Detail(frames=2, locals=6, value_chars=80, output_chars=200, message_lines=6, max_failures=10),
    _Detail(frames=1, locals=4, value_chars=60, output_chars=0, message_lines=3, max_failures=6),
    _Detail(frames=1, locals=0, value_chars=0, output_chars=0, message_lines=2, max_failures=3),
    _Detail(frames=0, locals=0, value_chars=0, output_chars=0, message_lines=1, max_failures=1),
)


def progress_line(report: TestReport, previous: TestReport | None) -> str:
    """ "3 of 4 now pass (was 1 of 4)." with the newly failing and newly passing tests named."""
    total = len(report.statuses)
    if report.timed_out and not total:
        return f"{HEADER} The test run was killed at its timeout before any test finished: {report.command}"
    words = (
        f"{report.passed} of {total} now pass" if previous is not None else f"{report.passed} of {total} pass"
    )
    parts = [f"{HEADER} {words}"]
    if previous is not None and previous.statuses:
        parts[0] += f" (was {previous.passed} of {len(previous.statuses)})"
        newly_failing = [
            t
            for t, s in report.statuses.items()
            if s in ("FAILED", "ERROR") and previous.statuses.get(t) in ("PASSED", "XFAIL")
        ]
        newly_passing = [
            t
            for t, s in report.statuses.items()
            if s in ("PASSED", "XFAIL") and previous.statuses.get(t) in ("FAILED", "ERROR")
        ]
        if newly_failing:
            parts.append(f"Newly failing (passed before): {_names(newly_failing)}")
        if newly_passing:
            parts.append(f"Newly passing: {_names(newly_passing)}")
    if report.timed_out:
        parts.append("The run was killed at its timeout; tests that had not finished are not counted")
    return ". ".join(parts) + "."


def summarize(
    report: TestReport,
    previous: TestReport | None,
    budget_tokens: int,
    *,
    count: Callable[[str], int] = count_tokens,
) -> str:
    """The progress line and the failures of `report`, within `budget_tokens` (counted by `count`)."""
    head = progress_line(report, previous)
    failures = _ordered(report, previous)
    if not failures:
        return trim_to_tokens(head, budget_tokens, count=count)
    text = head
    for level in _LEVELS:
        text = "\n".join([head, *_render_failures(failures, level)])
        if count(text) <= budget_tokens:
            return text
    return trim_to_tokens(text, budget_tokens, count=count)


def _ordered(report: TestReport, previous: TestReport | None) -> list[FailureDetail]:
    """Failures, newly failing ones first (they are what the last edit broke)."""
    known = {f.test_id for f in report.failures}
    # A failing status without details (e.g. parsed from a log) still deserves a line.
    bare = [
        FailureDetail(t) for t, s in report.statuses.items() if s in ("FAILED", "ERROR") and t not in known
    ]
    failures = [*report.failures, *bare]
    if previous is None:
        return failures

    def newly(f: FailureDetail) -> int:
        return 0 if previous.statuses.get(f.test_id) in ("PASSED", "XFAIL") else 1

    return sorted(failures, key=newly)


def _render_failures(failures: list[FailureDetail], level: _Detail) -> list[str]:
    lines: list[str] = []
    for failure in failures[: level.max_failures]:
        lines += _render_one(failure, level)
    rest = failures[level.max_failures :]
    if rest:
        lines.append(f"Also failing ({len(rest)}): {_names([f.test_id for f in rest], limit=8)}")
    return lines


def _render_one(failure: FailureDetail, level: _Detail) -> list[str]:
    lines = [f"FAILED {failure.test_id}"]
    message = [line for line in failure.message.splitlines() if line.strip()][: level.message_lines]
    lines += [f"  {line}" for line in message]
    for frame in failure.frames[-level.frames :] if level.frames else []:
        lines += [
            f"  at {part.strip()}" if i == 0 else f"     {part.strip()}"
            for i, part in enumerate(frame.splitlines())
        ]
    if level.locals and failure.locals:
        shown = list(failure.locals.items())[: level.locals]
        lines.append("  locals: " + ", ".join(f"{k}={_clip(v, level.value_chars)}" for k, v in shown))
    for name, stream in (("stdout", failure.stdout), ("stderr", failure.stderr)):
        if level.output_chars and stream.strip():
            lines.append(f"  captured {name}: {_clip(stream.strip(), level.output_chars, tail=True)}")
    return lines


def _clip(text: str, limit: int, *, tail: bool = False) -> str:
    text = text.replace("\n", "\\n") if not tail else text
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :] if tail else text[: limit - 3] + "..."


def _names(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
