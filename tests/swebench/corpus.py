"""The parser corpus: synthetic edge cases per official parser, generated line mixes, and real logs.

Real logs (tests/fixtures/swebench_logs, tests/fixtures/sympy_logs) come from real test runs; see
tests/fixtures/swebench_logs/README.md for how each was produced.
"""

from __future__ import annotations

import random
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SYNTHETIC: dict[str, str] = {
    # pytest -rA summaries and what surrounds them
    "pytest-summary": "\n".join(
        [
            "PASSED tests/test_a.py::test_x",
            "PASSED tests/test_a.py::test_p[a b]",
            "FAILED tests/test_a.py::test_y - AssertionError: x - y",
            "FAILED tests/test_a.py::test_z[x - y] - boom",
            "SKIPPED [1] tests/test_a.py:12: reason",
            "ERROR tests/test_a.py - ImportError: no module",
            "XFAIL tests/test_a.py::test_q - reason",
            "XPASS tests/test_a.py::test_r",
            "ERRORS",
            "PASSED",
            "FAILED",
            "PASSEDtests/t.py::glued",
            "  PASSED tests/t.py::indented",
        ]
    ),
    "pytest-pseudo-ids": "PASSED [100%]\nPASSED [ 50%]\nFAILED [100%]------------------------------\nPASSED [\n",
    "pytest-last-wins": "FAILED t.py::a - first\nPASSED t.py::a\nERROR t.py::b\nSKIPPED t.py::b\n",
    "pytest-crlf": "PASSED t.py::crlf\r\nFAILED t.py::crlf2 - m\r\n",
    "pytest-odd-whitespace": "PASSED\tt.py::tab\nPASSED t.py::a\x1cPASSED t.py::b\nPASSED t.py::c\u2028PASSED d\x0bx\n",
    "pytest-v-progress": "t.py::old PASSED\nt.py::old2 PASSED [ 50%]\nweird line XFAIL\nonlyPASSED\na b c ERROR\n",
    # pytest_v2: colour codes and control characters
    "pytest-ansi": "\n".join(
        [
            "\x1b[32mPASSED\x1b[0m tests/t.py::c",
            "\x1b[1;31mFAILED\x1b[0m tests/t.py::d - x",
            "\x1b[31mFAILED\x1b[0m tests/t.py::e - y - z",
            "[32mPASSED[0m no_escape_byte",
            "tests/t.py::f \x1b[32mPASSED\x1b[0m",
            "tests/t.py::g PASSED\x1b[0m",
            "\rPASSED tests/t.py::h",
            "PA\x07SSED tests/t.py::bell",
        ]
    ),
    # pytest_options: absolute-path parameters
    "pytest-options-paths": "\n".join(
        [
            "PASSED t.py::test_p[/usr/lib/x.py]",
            "PASSED t.py::test_p[//net/share]",
            "PASSED t.py::test_p[/a/*.py]",
            "PASSED t.py::test_p[rel/x.py]",
            "PASSED t.py::test_p[a][b]",
            "PASSED t.py::test_p[/x/y]extra",
            "PASSED t.py::test_p[]",
            "PASSED t.py::test_p[/]",
            "FAILED t.py::test_q[/abs/dir/file.txt-1] - msg",
            "PASSED t.py::test_r[/tmp/pycs-/home/projects/src/foo.py-/tmp/pycs/projects/src/foo.pyc]",
            "PASSED t.py::TestRunTC::test_stdin[/home/user/pylint/mymodule.py]",
            "PASSED [/abs/x]",
        ]
    ),
    # matplotlib: MouseButton ids
    "matplotlib-mousebutton": "\n".join(
        [
            "PASSED lib/t.py::test_b[MouseButton.LEFT]",
            "FAILED lib/t.py::test_b[MouseButton.RIGHT-x] - m",
            "PASSED lib/t.py::test_b[MouseButton.MIDDLE]",
            "MouseButton.LEFT PASSED",
            "PASSED MouseButton.RIGHT",
        ]
    ),
    # seaborn: PASSED/FAILED only; lines the official parser cannot read
    "seaborn-basic": "\n".join(
        [
            "tests/test_a.py::test_x PASSED [ 10%]",
            "tests/test_a.py::test_y FAILED [ 20%]",
            "PASSED tests/test_a.py::test_z",
            "FAILED tests/test_a.py::test_w - AssertionError",
            "x y PASSED z",
            "SKIPPED [1] tests/test_a.py:3: nope",
            "ERROR tests/test_a.py::test_v",
            "XFAIL tests/test_a.py::test_u",
        ]
    ),
    "seaborn-failed-alone": "PASSED t.py::a\nFAILED\n",
    "seaborn-passed-alone": "PASSED\n",
    "seaborn-passed-spaced": "x\n PASSED \n",
    "seaborn-failed-glued": "FAILEDx\n",
    # sympy bin/test
    "sympy-basic": "\n".join(
        [
            "sympy/core/tests/test_x.py[4] ",
            "test_a ok",
            "test_b F",
            "test_c E",
            "test_d f",
            "  test_e ok  ",
            "test_f Slow w",
            "test_g ok                                                      [OK]",
            "________________ sympy/core/tests/test_x.py:test_b ________________",
            "_ a.py:b _",
            "x a.py:b c d",
            "____ sympy/a.py:test_h ____ and ____ sympy/b.py:test_i ____",
        ]
    ),
    # django runtests.py --verbosity 2
    "django-basic": "\n".join(
        [
            "test_a (mod.Class) ... ok",
            "test_b (mod.Class) ... OK",
            "test_c (mod.Class) ...  OK",
            "test_d (mod.Class) ... skipped 'why'",
            "test_e (mod.Class) ... FAIL",
            "test_f (mod.Class) ... ERROR",
            "test_o (mod.Class) ... expected failure",
            "test_p (mod.Class) ... unexpected success",
            "FAIL: test_g (mod.Class)",
            "ERROR: test_h (mod.Class)",
            "test_q (mod.Class) ... ok\r",
        ]
    ),
    "django-docstring": "test_i (m.C)\nDocstring first line. ... ok\ntest_j (m.C)\nAnother description ... FAIL\n",
    "django-lone-ok": "ok\ntest_k (m.C) ... some output\nok\ntest_l (m.C) ... \nokay then\ntest_m (m.C) ... x\n   ok\n",
    "django-version-option": "test_version (admin_scripts.tests.CommandTypes)\n--version is equivalent to version ... ok\n",
    "django-migration": "Applying sites.0002_alter_domain_unique...test_no_migrations (m.C) ... ok\n",
    "django-interrupted": "\n".join(
        [
            "test_n (m.C) ... Testing against Django installed in '/x' with up to 4 processes",
            "System check identified no issues (0 silenced).",
            "ok",
            "test_o (m.C) ... Internal Server Error: /a/b/",
            "ok",
            "test_p (m.C) ... System check identified no issues (0 silenced)",
            "ok",
            "test_q",
            "... Testing against Django installed in x silenced).",
            "ok",
        ]
    ),
    "django-header-alone": "test_a (m.C) ... ok\nFAIL:\n",
    "django-error-header-alone": "ERROR:\n",
    "django-ok-line-wins": "ok ... FAIL\nok ... skipped\n",
    "empty": "",
    "blank-lines": "\n\n\n",
}

# Fragments the generated logs are built from: status words, ids, separators, control characters.
_FRAGMENTS = [
    "PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL", "ok", "OK", " ... ", "...", " - ", "-", "[100%]", "[",
    "]", "t.py::test_a", "t.py::test_b[/abs/p/x.py]", "test_c (m.C)", "MouseButton.LEFT", "MouseButton.RIGHT",
    "sympy/a.py:test_d", "____", "_", " F", " E", " ok", "\x1b[32m", "\x1b[0m", "[31m", "\t", "\r", "\x0b",
    " ", "  ", "FAIL:", "ERROR:", " ... skipped 'x'", "Internal Server Error: /x/", "\u2028", "\x1c",
]  # fmt: skip


def generated(count: int = 400, seed: int = 20240601) -> dict[str, str]:
    """`count` logs of random lines built from `_FRAGMENTS` (fixed seed: the same logs every run)."""
    rng = random.Random(seed)
    logs = {}
    for i in range(count):
        lines = [
            "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 12))
        ]
        logs[f"generated-{i}"] = "\n".join(lines)
    return logs


def real_logs() -> dict[str, str]:
    """Every committed real log, by file name."""
    paths = sorted((FIXTURES / "swebench_logs").glob("*.log")) + sorted(
        (FIXTURES / "sympy_logs").glob("*.log")
    )
    return {p.name: p.read_text(encoding="utf-8") for p in paths}


def corpus() -> dict[str, str]:
    return {**SYNTHETIC, **generated(), **real_logs()}
