"""The official SWE-bench (4.1.0) Python log parsers, reimplemented to give the same status maps.

A parser reads a test log and returns `{test id: status}`. The ids and statuses are the official ones,
quirks included, because FAIL_TO_PASS and PASS_TO_PASS were computed with them: a pytest line such as
`PASSED [100%]` records the pseudo-id `[100%]`, a status is the line's first word as written. Logs are
split on "\\n" only, as the official parsers do (a "\\r" stays in the line). The differential test in
tests/swebench checks each parser against the installed official one.

Where the official parser raises (seaborn's `FAILED` alone on a line), these raise `LogParseError`: the
log cannot be graded the official way, and the caller says so instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

ParserName = Literal["pytest", "pytest_options", "pytest_v2", "django", "matplotlib", "seaborn", "sympy"]

# The official TestStatus values, in its enum's order; a line "starts with a status" if it starts with one.
STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")


class LogParseError(ValueError):
    """The official parser fails on this log (it raises), so it has no official reading."""


def _starts_with_status(line: str) -> bool:
    return line.startswith(STATUSES)


def _summary_tokens(line: str) -> list[str]:
    # A failure line reads "FAILED id - message": the official parser drops every " - " before splitting.
    if line.startswith("FAILED"):
        line = line.replace(" - ", " ")
    return line.split()


def parse_pytest(log: str) -> dict[str, str]:
    """pytest `-rA`: every line that starts with a status word; its second token is the id, its first the
    status; the last line for an id wins."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        if _starts_with_status(line):
            tokens = _summary_tokens(line)
            if len(tokens) > 1:
                statuses[tokens[1]] = tokens[0]
    return statuses


_PARAMETRISED = re.compile(r"(.*?)\[(.*)\]")


def _shorten_path_option(test_id: str) -> str:
    """`test_x[/abs/path/file]` -> `test_x[/file]`: the official lists name absolute-path parameters by
    basename (they differ per machine). Text after the last `]` is dropped, as the official parser does."""
    m = _PARAMETRISED.search(test_id)
    if m is None:
        return test_id
    head, option = m.group(1), m.group(2)
    if option.startswith("/") and not option.startswith("//") and "*" not in option:
        option = "/" + option.rsplit("/", 1)[-1]
    return f"{head}[{option}]"


def parse_pytest_options(log: str) -> dict[str, str]:
    """pytest `-rA` with absolute-path parameters shortened to `/basename` (requests, pylint, pydicom)."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        if _starts_with_status(line):
            tokens = _summary_tokens(line)
            if len(tokens) > 1:
                statuses[_shorten_path_option(tokens[1])] = tokens[0]
    return statuses


# Colour codes are removed as "[<digits>m" (the escape byte goes with the control characters), so a
# compound code such as ESC[1;31m leaves "[1;31m" behind, as it does officially.
_COLOUR = re.compile(r"\[\d+m")
_CONTROL = str.maketrans("", "", "".join(chr(c) for c in range(1, 32)))


def parse_pytest_v2(log: str) -> dict[str, str]:
    """pytest with colour codes and control characters (tabs, "\\r" included) stripped; besides summary
    lines, a line that ends with a status word maps its first token to its second (`-v` progress lines
    of old pytest: `path::test PASSED`), whatever that second token is."""
    statuses: dict[str, str] = {}
    for raw in log.split("\n"):
        line = _COLOUR.sub("", raw).translate(_CONTROL)
        if _starts_with_status(line):
            tokens = _summary_tokens(line)
            if len(tokens) > 1:
                statuses[tokens[1]] = tokens[0]
        elif line.endswith(STATUSES):
            tokens = line.split()
            if len(tokens) > 1:
                statuses[tokens[0]] = tokens[1]
    return statuses


def parse_matplotlib(log: str) -> dict[str, str]:
    """pytest, with `MouseButton.LEFT` / `MouseButton.RIGHT` in ids written 1 / 3 (the enum's repr changed
    between matplotlib versions; the official lists use the numbers)."""
    statuses: dict[str, str] = {}
    for raw in log.split("\n"):
        line = raw.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3")
        if _starts_with_status(line):
            tokens = _summary_tokens(line)
            if len(tokens) > 1:
                statuses[tokens[1]] = tokens[0]
    return statuses


def parse_seaborn(log: str) -> dict[str, str]:
    """seaborn's pytest output: only FAILED and PASSED count. `FAILED id`, `PASSED id`, or a progress line
    `id PASSED ...`; a FAILED or PASSED summary line with no id has no official reading (LogParseError)."""
    statuses: dict[str, str] = {}
    for number, line in enumerate(log.split("\n"), 1):
        tokens = line.split()
        if line.startswith("FAILED"):
            if len(tokens) < 2:
                raise LogParseError(f"line {number}: a FAILED line with no test id")
            statuses[tokens[1]] = "FAILED"
        elif " PASSED " in line:
            if len(tokens) < 2:
                raise LogParseError(f"line {number}: a PASSED line with no test id")
            if tokens[1] == "PASSED":
                statuses[tokens[0]] = "PASSED"
        elif line.startswith("PASSED"):
            if len(tokens) < 2:
                raise LogParseError(f"line {number}: a PASSED line with no test id")
            statuses[tokens[1]] = "PASSED"
    return statuses


_SYMPY_FAILURE = re.compile(r"(_*) (.*)\.py:(.*) (_*)")


def parse_sympy(log: str) -> dict[str, str]:
    """sympy `bin/test -C --verbose`: a failure header `___ path.py:test_name ___` marks `path.py:test_name`
    failed (anywhere in the log, as the official regex finds it), then `test_name ok|F|E` result lines."""
    statuses = {f"{m.group(2)}.py:{m.group(3)}": "FAILED" for m in _SYMPY_FAILURE.finditer(log)}
    for raw in log.split("\n"):
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        for ending, status in ((" E", "ERROR"), (" F", "FAILED"), (" ok", "PASSED")):
            if line.endswith(ending):
                statuses[line.split()[0]] = status
    return statuses


def parse_django(log: str) -> dict[str, str]:
    """Django's `runtests.py --verbosity 2`: `name (module.Class) ... ok|skipped|FAIL|ERROR`, where the name
    may be a docstring's first line; `FAIL: id` / `ERROR: id` headers; and a line starting with `ok` credits
    the last test seen with ` ... ` (its output came between the dots and the verdict)."""
    statuses: dict[str, str] = {}
    last_started: str | None = None
    for raw in log.split("\n"):
        line = raw.strip()
        if "--version is equivalent to version" in line:  # a test whose output spans lines
            statuses["--version is equivalent to version"] = "PASSED"
        if " ... " in line:
            last_started = line.split(" ... ", 1)[0]
        _django_line(line, statuses)
        if line.startswith("ok") and last_started is not None:
            statuses[last_started] = "PASSED"
    for pattern in _DJANGO_INTERRUPTED:
        for m in pattern.finditer(log):
            statuses[m.group(1)] = "PASSED"
    return statuses


_DJANGO_PASS_ENDINGS = (" ... ok", " ... OK", " ...  OK")
# One instance (django__django-7188) prints a migration line and the test's verdict on one line.
_DJANGO_MIGRATION_PREFIX = "Applying sites.0002_alter_domain_unique...test_no_migrations"


def _django_line(line: str, statuses: dict[str, str]) -> None:
    """The per-line verdicts of `parse_django`, in the official order (a later one overwrites)."""
    for ending in _DJANGO_PASS_ENDINGS:
        if line.endswith(ending):
            if line.startswith(_DJANGO_MIGRATION_PREFIX):
                line = line.split("...", 1)[1].strip()
            statuses[line.rsplit(ending, 1)[0]] = "PASSED"
            break
    if " ... skipped" in line:
        statuses[line.split(" ... skipped", 1)[0]] = "SKIPPED"
    if line.endswith(" ... FAIL"):
        statuses[line.split(" ... FAIL", 1)[0]] = "FAILED"
    if line.startswith("FAIL:"):
        statuses[_header_id(line)] = "FAILED"
    if line.endswith(" ... ERROR"):
        statuses[line.split(" ... ERROR", 1)[0]] = "ERROR"
    if line.startswith("ERROR:"):
        statuses[_header_id(line)] = "ERROR"


def _header_id(line: str) -> str:
    """The id of a `FAIL: id (module.Class)` header: its second token."""
    tokens = line.split()
    if len(tokens) < 2:
        raise LogParseError(f"a {tokens[0]!r} header with no test id")
    return tokens[1]


# A long multi-line message printed between a test's dots and its `ok` (three forms seen in the logs).
_DJANGO_INTERRUPTED = tuple(
    re.compile(rf"^(.*?)\s\.\.\.\s{middle}\nok$", re.MULTILINE)
    for middle in (
        r"Testing against Django installed in (?s:.*?) silenced\)\.",
        r"Internal Server Error: /.*/",
        r"System check identified no issues \(0 silenced\)",
    )
)

PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": parse_pytest,
    "pytest_options": parse_pytest_options,
    "pytest_v2": parse_pytest_v2,
    "django": parse_django,
    "matplotlib": parse_matplotlib,
    "seaborn": parse_seaborn,
    "sympy": parse_sympy,
}


def parse_log(log: str, parser: str) -> dict[str, str]:
    """Parse `log` with the named official parser. Raises ValueError for an unknown name, LogParseError
    where the official parser fails."""
    try:
        fn = PARSERS[parser]
    except KeyError:
        raise ValueError(f"unknown log parser {parser!r}; expected one of {', '.join(PARSERS)}") from None
    return fn(log)
