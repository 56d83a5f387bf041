"""Log parsers on real log snippets: pytest -rA, sympy bin/test --verbose, JUnit XML."""

from __future__ import annotations

import pytest

from devloop.parse.log_parsers import parse_junit, parse_log, parse_pytest, parse_sympy

PYTEST_LOG = """\
tests/test_calc.py::test_mul PASSED                                      [ 16%]
tests/test_calc.py::test_skipped SKIPPED (not on this platform)          [ 33%]
tests/test_calc.py::test_known_bug XFAIL (known)                         [ 50%]
tests/test_calc.py::test_neg FAILED                                      [100%]
=================================== FAILURES ===================================
___________________________________ test_neg ___________________________________
E       assert 4 == -4
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED tests/test_calc.py::test_mul
PASSED tests/test_calc.py::test_add_param[one two]
PASSED testing/test_mark.py::test_parametrized_with_kwargs[None-None]
SKIPPED [1] tests/test_calc.py:10: not on this platform
XFAIL tests/test_calc.py::test_known_bug - known
FAILED tests/test_calc.py::test_neg - assert 4 == -4
FAILED testing/test_x.py::test_y[a - b] - AssertionError: assert [1] == [2]
ERROR testing/python/fixtures.py::test_setup - fixture 'tmpdir' not found
============== 2 failed, 3 passed, 1 skipped, 1 xfailed in 0.09s ===============
"""

# An older pytest (4.x, as in SWE-bench's pytest-dev instances) with colour codes left in.
PYTEST_OLD_LOG = """\
\x1b[32mPASSED\x1b[0m testing/test_skipping.py::TestXFail::test_xfail_simple[True]
FAILED testing/test_skipping.py::test_xfail_item
XFAIL testing/test_skipping.py::TestXFail::test_xfail_imperative
  reason: hello
"""

SYMPY_LOG = """\
============================= test process starts ==============================
executable:         /usr/bin/python3  (3.9.19-final-0) [CPython]
random seed:        77446226
hash randomization: on (PYTHONHASHSEED=2330284766)

sympy/core/tests/test_basic.py[4]
test__aresame ok
test_structure ok
test_S E
test_xreplace F
[FAIL]

________________________________________________________________________________
________________ sympy/core/tests/test_basic.py:test_xreplace __________________
Traceback (most recent call last):
AssertionError

=========== tests finished: 2 passed, 1 failed, 1 exceptions, in 0.05 seconds ===========
"""

JUNIT_LOG = """\
$ pytest --junitxml=report.xml -q && cat report.xml
<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1"
 skipped="2" tests="5"><testcase classname="tests.test_calc" name="test_mul" time="0.001" />
<testcase classname="tests.test_calc" name="test_neg" time="0.001"><failure message="assert 4 == -4">x</failure>
</testcase><testcase classname="tests.test_calc" name="test_io"><error message="fixture">e</error></testcase>
<testcase classname="tests.test_calc" name="test_skip"><skipped type="pytest.skip" message="nope" /></testcase>
<testcase classname="tests.test_calc" name="test_bug"><skipped type="pytest.xfail" message="known" /></testcase>
</testsuite></testsuites>
"""


def test_pytest_summary_lines_with_verbatim_parametrised_ids():
    statuses = parse_pytest(PYTEST_LOG)
    assert statuses["tests/test_calc.py::test_mul"] == "PASSED"
    assert statuses["tests/test_calc.py::test_add_param[one two]"] == "PASSED"
    assert statuses["tests/test_calc.py::test_add_param[one"] == "PASSED"  # as the official lists cut it
    assert statuses["testing/test_mark.py::test_parametrized_with_kwargs[None-None]"] == "PASSED"
    assert statuses["tests/test_calc.py::test_known_bug"] == "XFAIL"
    assert statuses["tests/test_calc.py::test_neg"] == "FAILED"
    assert statuses["testing/test_x.py::test_y[a - b]"] == "FAILED"
    assert statuses["testing/python/fixtures.py::test_setup"] == "ERROR"


def test_pytest_skipped_tests_come_from_verbose_lines_only():
    statuses = parse_pytest(PYTEST_LOG)
    assert statuses["tests/test_calc.py::test_skipped"] == "SKIPPED"
    assert not any(key.startswith("[") for key in statuses)  # "SKIPPED [1] file:line" names no test


def test_pytest_old_format_and_ansi_codes():
    statuses = parse_pytest(PYTEST_OLD_LOG)
    assert statuses == {
        "testing/test_skipping.py::TestXFail::test_xfail_simple[True]": "PASSED",
        "testing/test_skipping.py::test_xfail_item": "FAILED",
        "testing/test_skipping.py::TestXFail::test_xfail_imperative": "XFAIL",
    }


def test_sympy_verbose_lines_and_failure_headers():
    statuses = parse_sympy(SYMPY_LOG)
    assert statuses["test__aresame"] == "PASSED"
    assert statuses["test_S"] == "ERROR"
    assert statuses["test_xreplace"] == "FAILED"
    assert statuses["sympy/core/tests/test_basic.py:test_xreplace"] == "FAILED"


def test_junit_xml_in_the_log():
    statuses = parse_junit(JUNIT_LOG)
    assert statuses == {
        "tests.test_calc.test_mul": "PASSED",
        "tests.test_calc.test_neg": "FAILED",
        "tests.test_calc.test_io": "ERROR",
        "tests.test_calc.test_skip": "SKIPPED",
        "tests.test_calc.test_bug": "XFAIL",
    }


def test_unknown_parser_is_a_clear_error():
    assert parse_log(PYTEST_LOG, "pytest") == parse_pytest(PYTEST_LOG)
    with pytest.raises(ValueError, match="unknown log parser 'mocha'"):
        parse_log("", "mocha")
