# ruff: noqa: UP031, UP032, SIM115
"""A tiny pytest plugin, loaded with `-p devloop_report`, writing one JSON line per test outcome.

It runs inside the task's environment, so it is written for any Python >= 3.5 and pytest >= 3 (no
f-strings, no annotations, only hooks that old pytest has). The runner copies this file into the shell's
scratch directory as `devloop_report.py` and puts that directory on PYTHONPATH. Lines are flushed as tests
finish, so a run killed at its timeout still reports what finished.

Each line: {"id", "status", "when", "message", "frames", "locals", "stdout", "stderr", "rootdir"}.
"""

import json
import os
import sys
import traceback

import pytest

_OUT = os.environ.get("DEVLOOP_REPORT_FILE")
_MAX_FRAMES = 6
_MAX_LOCALS = 12
_REPR = 160
_TEXT = 2000
_SKIP_FILES = ("/_pytest/", "/pluggy/", "/unittest/case.py", "/unittest/mock.py")
_fh = None


def _write(record):
    global _fh
    if not _OUT:
        return
    if _fh is None:
        _fh = open(_OUT, "a")
    _fh.write(json.dumps(record) + "\n")
    _fh.flush()


def _short(text, limit):
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _safe_repr(value):
    try:
        return _short(repr(value), _REPR)
    except Exception as exc:  # a broken __repr__ must not break the report
        return "<repr failed: %s>" % type(exc).__name__


def _details(excinfo, rootdir):
    """Message, last frames and the failing frame's locals of an exception."""
    exc = excinfo.value
    text = str(exc).strip()
    message = "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__
    entries = []
    tb = excinfo.tb
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    kept = [t for t in entries if not any(s in t.tb_frame.f_code.co_filename for s in _SKIP_FILES)] or entries
    frames = []
    for t in kept[-_MAX_FRAMES:]:
        code = t.tb_frame.f_code
        summary = traceback.extract_tb(t, limit=1)[0]
        path = code.co_filename
        if rootdir and path.startswith(rootdir + os.sep):
            path = path[len(rootdir) + 1 :]
        line = (summary[3] or "").strip()
        frames.append("%s:%d in %s\n    %s" % (path, t.tb_lineno, code.co_name, line))
    # The failing frame: the innermost one in the project's own files (not site-packages or the stdlib).
    own = [
        t
        for t in kept
        if rootdir
        and t.tb_frame.f_code.co_filename.startswith(rootdir)
        and "site-packages" not in t.tb_frame.f_code.co_filename
    ]
    failing = (own or kept or [None])[-1]
    local_reprs = {}
    if failing is not None:
        for name, value in list(failing.tb_frame.f_locals.items()):
            if name.startswith(("@", "__")) or len(local_reprs) >= _MAX_LOCALS:
                continue
            local_reprs[name] = _safe_repr(value)
    return _short(message, _TEXT), frames, local_reprs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    status = None
    if report.when == "call":
        if report.passed:
            status = "XPASS" if hasattr(report, "wasxfail") else "PASSED"
        elif report.failed:
            status = "FAILED"
        else:
            status = "XFAIL" if hasattr(report, "wasxfail") else "SKIPPED"
    elif report.failed:
        status = "ERROR"
    elif report.when == "setup" and report.skipped:
        status = "XFAIL" if hasattr(report, "wasxfail") else "SKIPPED"
    if status is None:
        return
    rootdir = str(item.config.rootdir)
    record = {
        "id": report.nodeid,
        "status": status,
        "when": report.when,
        "rootdir": rootdir,
        "message": "",
        "frames": [],
        "locals": {},
        "stdout": _short(getattr(report, "capstdout", "") or "", _TEXT),
        "stderr": _short(getattr(report, "capstderr", "") or "", _TEXT),
    }
    if status in ("FAILED", "ERROR") and call.excinfo is not None:
        try:
            record["message"], record["frames"], record["locals"] = _details(call.excinfo, rootdir)
        except Exception as exc:  # never lose the status over a detail
            record["message"] = "could not read the failure: %r" % (exc,)
    _write(record)


def pytest_collectreport(report):
    if not report.failed:
        return
    text = str(getattr(report, "longreprtext", "") or report.longrepr or "")
    lines = [line for line in text.splitlines() if line.strip()]
    # A collection error's useful part is its last lines (the exception and where it was raised).
    message = "collection failed: " + "\n".join(lines[-8:])
    _write(
        {
            "id": report.nodeid or "<collection>",
            "status": "ERROR",
            "when": "collect",
            "rootdir": "",
            "message": _short(message, _TEXT),
            "frames": [],
            "locals": {},
            "stdout": "",
            "stderr": "",
        }
    )


def pytest_sessionfinish(session, exitstatus):
    global _fh
    if _fh is not None:
        _fh.close()
        _fh = None
    sys.stdout.flush()
