"""devloop's ports of the official log parsers give the official status maps, on every corpus log.

Needs the reference package (`pip install --no-deps swebench==4.1.0`, as .ci/run does); only its
parser and constants modules are imported (see devloop.swebench.official). Every parser runs on every
log, not only its own repository's: a difference anywhere fails.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from devloop.swebench import official
from devloop.swebench.log_parsers import PARSERS, LogParseError

_spec = importlib.util.spec_from_file_location("swebench_corpus", Path(__file__).with_name("corpus.py"))
assert _spec is not None and _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="module")
def reference() -> official.Official:
    try:
        return official.load()
    except official.OfficialUnavailable as exc:
        pytest.skip(f"the differential test needs the reference parsers: {exc}")


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "map", fn(*args)
    except (IndexError, LogParseError):  # the official parsers fail with IndexError on a few line shapes
        return "raises", None


def test_every_official_python_parser_is_ported(reference: official.Official) -> None:
    assert set(PARSERS) == set(reference.parser_functions)


def test_repo_map_matches_the_official_one(reference: official.Official) -> None:
    from devloop.swebench.specs import table

    assert table().log_parsers == {
        repo: official.parser_name(reference, fn) for repo, fn in reference.parsers.items()
    }


def test_every_parser_matches_the_official_one_on_the_corpus(reference: official.Official) -> None:
    logs = corpus.corpus()
    assert len(corpus.real_logs()) >= 12 and len(logs) >= 400
    differences = []
    for name, mine in PARSERS.items():
        theirs = reference.parser_functions[name]
        for log_name, log in logs.items():
            expected = _outcome(theirs, log, None)
            got = _outcome(mine, log)
            if got != expected:
                differences.append(f"{name} on {log_name}: devloop {got}, official {expected}")
    assert differences == [], f"{len(differences)} differences:\n" + "\n".join(differences[:20])


def test_the_corpus_exercises_the_quirks(reference: official.Official) -> None:
    """The corpus is worth comparing on: the official parsers produce the quirky ids on it."""
    logs = corpus.corpus()
    pytest_v2 = reference.parser_functions["pytest_v2"]
    assert "[100%]" in reference.parser_functions["pytest"](logs["pytest-pseudo-ids"], None)
    assert "[100%]" in reference.parser_functions["pytest"](logs["pytest_v_narrow.log"], None)
    assert "tests/t.py::c" in pytest_v2(logs["pytest-ansi"], None)
    assert "t.py::test_p[/x.py]" in reference.parser_functions["pytest_options"](
        logs["pytest-options-paths"], None
    )
    assert "lib/t.py::test_b[1]" in reference.parser_functions["matplotlib"](
        logs["matplotlib-mousebutton"], None
    )
    django = reference.parser_functions["django"](logs["django_v2.log"], None)
    assert django["Prints on stderr before passing."] == "PASSED"
    assert django["test_prints (shop.tests.PlainTests.test_prints)"] == "PASSED"
    assert (
        _outcome(
            lambda text: reference.parser_functions["seaborn"](text, None), logs["seaborn-failed-alone"]
        )[0]
        == "raises"
    )
