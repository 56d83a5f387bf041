"""best-of: the candidate passing the visible tests wins, the hidden tests are never consulted; the vote."""

from __future__ import annotations

import pytest

from devloop.config import load_settings
from devloop.eval import ProtocolConfig, UnitStore, normalise_patch, run_protocol
from devloop.eval.best_of import choose, is_test_path


@pytest.mark.slow
def test_best_of_picks_the_candidate_that_passes_the_visible_tests(calc_task, serve, env_manager, env_cache,
                                                                  tmp_path):  # fmt: skip
    # Sample 0: half a fix plus a test of its own that fails. Sample 1: fixes add and neg but breaks mul
    # (test_mul, a visible test, regresses). Sample 2: the fix. Neither the index nor the vote favours 2.
    server = serve({"E": ["half_own_test", "fix_break_mul", "fix"]})
    settings = load_settings(model="openai/test", base_url=server.url, max_iterations=6, temperature=0.7)
    result = run_protocol([calc_task("E")], settings, ProtocolConfig(name="best-of", samples=3, temperature=0.7),
                          run_id="bo", output=tmp_path / "out", cache_dir=env_cache)  # fmt: skip
    assert set(server.temperatures("E")) == {0.7}
    store = UnitStore(tmp_path / "out", "bo")
    selection = store.read_selection("calc__calc-E")
    rows = {c["index"]: c for c in selection.candidates}
    assert rows[0]["own_tests_failed"] == 1 and rows[0]["regressions"] == 0
    # mul(a, b) + 1 fails test_mul and turns the xfail test_known_bug into an unexpected pass.
    assert rows[1]["regressions"] == 2 and rows[2]["regressions"] == 0 and rows[2]["own_tests_failed"] == 0
    assert selection.chosen == 2
    assert result.report.resolved_ids == ["calc__calc-E"]
    section = result.sections
    assert section["best_of"]["selected"]["value"] == 1.0 and section["samples_per_task"] == 3
    assert [r["k"] for r in section["pass_at_k"]] == [1, 2, 3]
    assert abs(section["pass_at_k"][0]["pass_at_k"]["value"] - 1 / 3) < 1e-9  # one of three samples resolves


def test_selection_ignores_the_hidden_tests(calc_task, calc_patches, env_manager, env_cache, tmp_path):
    from devloop.eval.best_of import select

    task = calc_task("F")
    patches = {0: calc_patches["half"], 1: calc_patches["gold"]}
    blind = task.model_copy(update={"FAIL_TO_PASS": ["nope"], "PASS_TO_PASS": [], "test_patch": "garbage"})
    a = select(task, patches, manager=env_manager, mirrors=None, test_timeout=60, log_dir=tmp_path / "a")
    b = select(blind, patches, manager=env_manager, mirrors=None, test_timeout=60, log_dir=tmp_path / "b")
    assert (
        a.candidates == b.candidates and a.chosen == b.chosen == 0
    )  # a tie on visible evidence: lowest index


def test_normalised_patches_ignore_whitespace_comments_context_and_tests(calc_diff, calc_sources):
    plain = calc_diff({"calc.py": calc_sources["calc.py"].replace("return a - b", "return a + b")})
    spaced = calc_diff({"calc.py": calc_sources["calc.py"].replace("return a - b", "return  a +  b  # fixed")
                        .replace("def mul", "\n# a comment\ndef mul")})  # fmt: skip
    with_test = plain + calc_diff({"tests/test_new.py": "def test_x():\n    pass\n"})
    other = calc_diff({"calc.py": calc_sources["calc.py"].replace("return a - b", "return b + a")})
    assert normalise_patch(plain) == normalise_patch(with_test) != ""
    assert normalise_patch(spaced) != normalise_patch(other)
    # An inline comment is part of the line; a whole-line comment and extra blank lines are not.
    assert normalise_patch(calc_diff({"calc.py": calc_sources["calc.py"].replace("return a - b", "return a  +  b")
                                      .replace("def mul", "# note\n\ndef mul")})) == normalise_patch(plain)  # fmt: skip
    whitespace_only = calc_diff(
        {"calc.py": calc_sources["calc.py"].replace("return a - b", "return a  -  b")}
    )
    assert normalise_patch(whitespace_only) == ""
    assert normalise_patch("") == ""


def test_choose_orders_by_applies_regressions_own_tests_votes_index():
    def c(index, applied=1, regressions=0, own=0, votes=1):
        return {
            "index": index,
            "applied": applied,
            "regressions": regressions,
            "own_tests_failed": own,
            "votes": votes,
        }

    assert choose([c(0, applied=0), c(1, regressions=3)]) == 1
    assert choose([c(0, regressions=1, votes=5), c(1, own=2)]) == 1
    assert choose([c(0, own=1), c(1, own=0, votes=1), c(2, own=0, votes=2)]) == 2
    assert choose([c(3), c(1)]) == 1
    assert (
        is_test_path("tests/test_calc.py") and is_test_path("pkg/foo_test.py") and not is_test_path("calc.py")
    )
