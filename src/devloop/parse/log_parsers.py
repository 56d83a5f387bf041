"""Test-log parsers: a log in, `{test id: status}` out, following the official SWE-bench rules.

Statuses are PASSED, FAILED, SKIPPED, ERROR and XFAIL. A test the log does not name is absent, and the
grader counts it as failed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from enum import StrEnum


class TestStatus(StrEnum):
    """A test's outcome as read from a log."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    XFAIL = "XFAIL"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STATUS_WORDS = tuple(s.value for s in TestStatus)
# "<STATUS> <id>[ - message]": a parametrised id runs to the "]" that ends it, spaces included.
_SUMMARY = re.compile(r"^(PASSED|FAILED|SKIPPED|ERROR|XFAIL) (\S*?\[.*?\]|\S+)(?= - |\s|$)")
# Verbose progress lines (`pytest -v`): "path::test[id] SKIPPED (reason)   [ 50%]"
_VERBOSE_SKIP = re.compile(r"^(\S+::.+?) SKIPPED\b")


def parse_pytest(log: str) -> dict[str, str]:
    """Statuses from pytest's `-rA` short summary (`PASSED path::test[param]`, `FAILED ... - msg`).

    As in the official harness, only lines that start with a status word count, and the last one for
    a test wins. A parametrised id with spaces is recorded verbatim and, as the official lists name it,
    cut at its first space. Skipped tests are named only in `-v` progress lines (`-rA` shows `SKIPPED [1] file:line`),
    so those are read too, for tests the summary does not name.
    """
    statuses: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for raw in log.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        if line.startswith(_STATUS_WORDS):
            m = _SUMMARY.match(line)
            if m and not m.group(2).startswith("["):  # "SKIPPED [1] file:12: reason" names no test
                # The official parser keys a test by its first whitespace-separated token, so the official
                # FAIL_TO_PASS/PASS_TO_PASS lists hold ids cut at a space ("test_x[a"): record both forms.
                statuses[line.split()[1]] = m.group(1)
                statuses[m.group(2)] = m.group(1)
        elif m := _VERBOSE_SKIP.match(line):
            skipped[m.group(1)] = TestStatus.SKIPPED.value
    return {**skipped, **statuses}


_SYMPY_FAILURE_HEADER = re.compile(r"(_*) (.*)\.py:(.*) (_*)")


def parse_sympy(log: str) -> dict[str, str]:
    """Statuses from sympy's `bin/test -C --verbose`: `test_name ok|F|E` lines and failure headers.

    A header `____ sympy/x/tests/test_y.py:test_z ____` marks `sympy/x/tests/test_y.py:test_z` failed,
    as the official parser does; a result line then records the bare test name.
    """
    statuses: dict[str, str] = {}
    for m in _SYMPY_FAILURE_HEADER.finditer(log):
        statuses[f"{m.group(2)}.py:{m.group(3)}"] = TestStatus.FAILED.value
    for raw in log.splitlines():
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        name = line.split()[0]
        if line.endswith(" E"):
            statuses[name] = TestStatus.ERROR.value
        elif line.endswith(" F"):
            statuses[name] = TestStatus.FAILED.value
        elif line.endswith(" ok"):
            statuses[name] = TestStatus.PASSED.value
    return statuses


_XML_BLOCK = re.compile(r"<testsuites\b.*?</testsuites>|<testsuite\b.*?</testsuite>", re.S)


def parse_junit(log: str) -> dict[str, str]:
    """Statuses from JUnit XML found in the log (the test command prints the report, e.g. `cat`).

    A test's id is `classname.name` (just `name` when there is no classname). A `<skipped>` whose type or
    message says xfail is XFAIL; other children map to FAILED, ERROR and SKIPPED; no child is PASSED.
    """
    statuses: dict[str, str] = {}
    for block in _XML_BLOCK.findall(log):
        try:
            root = ET.fromstring(block)
        except ET.ParseError:
            continue
        for case in root.iter("testcase"):
            name = case.get("name", "")
            classname = case.get("classname", "")
            test_id = f"{classname}.{name}" if classname else name
            status = TestStatus.PASSED.value
            for child in case:
                if child.tag == "failure":
                    status = TestStatus.FAILED.value
                elif child.tag == "error":
                    status = TestStatus.ERROR.value
                elif child.tag == "skipped":
                    detail = f"{child.get('type', '')} {child.get('message', '')}".lower()
                    status = TestStatus.XFAIL.value if "xfail" in detail else TestStatus.SKIPPED.value
            statuses[test_id] = status
    return statuses


PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": parse_pytest,
    "sympy": parse_sympy,
    "junit": parse_junit,
}


def parse_log(log: str, parser: str) -> dict[str, str]:
    """Parse `log` with the named parser (pytest, sympy, junit)."""
    try:
        return PARSERS[parser](log)
    except KeyError:
        raise ValueError(f"unknown log parser {parser!r}; expected one of {', '.join(PARSERS)}") from None
