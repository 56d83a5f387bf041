"""Stage rules, decontamination by problem text, run-directory reading and what inspect prints, on
copies of the shared oracle run (tampered where a case needs it)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from devloop.cli import _register, app
from devloop.dataset.build import build, cell, load_filters, task_ids
from devloop.dataset.collect import attempts

CONFETTI, CSVLITE = "devloop__confetti-1", "devloop__csvlite-1"


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True)
    return dest


def _att(run: Path, iid: str, k: int = 0) -> Path:
    return run / "instances" / iid / "attempts" / str(k)


def _rows(out: Path, stage: str) -> list[dict]:
    text = (out / stage / "train.jsonl").read_text() + (out / stage / "valid.jsonl").read_text()
    return [json.loads(x) for x in text.splitlines()]


def _edit_unit(att: Path, **changes: object) -> None:
    unit = json.loads((att / "unit.json").read_text())
    unit.update(changes)
    (att / "unit.json").write_text(json.dumps(unit))


def test_stage1_needs_a_finish_and_a_patch(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path / "run")
    _edit_unit(_att(copy, CONFETTI), exit_status="max_iterations")
    _edit_unit(_att(copy, CSVLITE), patch="  \n")
    report = build([copy], tmp_path / "o")
    assert report["stages"]["stage1"]["dropped"] == {"unfinished": 1, "empty_patch": 1}
    assert _rows(tmp_path / "o", "stage1") == []


def test_stage2_drops_tool_errors_repeats_and_extra_attempts(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path / "oracle")
    traj = _att(copy, CONFETTI) / "agent" / "trajectory.jsonl"
    events = [json.loads(x) for x in traj.read_text().splitlines()]
    first = next(i for i, e in enumerate(events) if e["type"] == "step")
    looped = events[: first + 1] + [events[first]] * 2 + events[first + 1 :]  # one call made 3 times
    traj.write_text("".join(json.dumps(e) + "\n" for e in looped))
    errs = _copy(run, tmp_path / "errs")  # a second run: one tool error in csvlite's attempt
    traj = _att(errs, CSVLITE) / "agent" / "trajectory.jsonl"
    events = [json.loads(x) for x in traj.read_text().splitlines()]
    next(e for e in events if e["type"] == "step")["observations"][0]["is_error"] = True
    traj.write_text("".join(json.dumps(e) + "\n" for e in events))
    again = _copy(run, tmp_path / "again")  # a third, clean run with other patches (not duplicates)
    for iid in (CONFETTI, CSVLITE):
        unit = json.loads((_att(again, iid) / "unit.json").read_text())
        _edit_unit(_att(again, iid), patch=unit["patch"] + "+one more line\n")
    report = build([copy, errs, again], tmp_path / "o")
    stage2 = report["stages"]["stage2"]
    # confetti: the looped attempt is out, two clean ones left, one kept; csvlite: one error, two clean.
    assert stage2["dropped"] == {"per_instance": 2, "repeats": 1, "tool_errors": 1}
    assert stage2["rejections"] == {"repeats": 1, "tool_errors": 1}
    assert sorted(r["instance_id"] for r in _rows(tmp_path / "o", "stage2")) == [CONFETTI, CSVLITE]
    # Stage 1 keeps all three runs' attempts but one per instance and patch: the looped confetti
    # attempt made the same change as errs' (and csvlite's in `oracle` the same as errs').
    assert report["stages"]["stage1"]["dropped"] == {"duplicate": 2}
    assert sum(report["stages"]["stage1"]["kept"].values()) == 4
    md = (tmp_path / "o" / "report.md").read_text()
    assert "| stage2 | repeats | 1 |" in md and "| stage2 | per_instance | 2 |" in md
    rules = tmp_path / "f.toml"
    rules.write_text("[stage2]\nmax_repeats = 3\nmax_tool_errors = 1\nper_instance = 3\n")
    loose = build([copy, errs, again], tmp_path / "l", filters=load_filters(rules))
    assert (
        loose["stages"]["stage2"]["dropped"] == {"duplicate": 2} and len(_rows(tmp_path / "l", "stage2")) == 4
    )


def test_fewest_steps_is_the_attempt_kept(run: Path, tmp_path: Path) -> None:
    a, b = _copy(run, tmp_path / "a"), _copy(run, tmp_path / "b")
    _edit_unit(_att(a, CONFETTI), steps=9, index=0)
    _edit_unit(_att(b, CONFETTI), steps=2, index=5)
    build([a, b], tmp_path / "o")
    kept = [r for r in _rows(tmp_path / "o", "stage2") if r["instance_id"] == CONFETTI]
    assert [r["attempt"] for r in kept] == [5]


def test_a_bad_rule_value_is_one_line_exit_2(run: Path, tmp_path: Path) -> None:
    rules = tmp_path / "f.toml"
    rules.write_text("[stage2]\nmax_repeats = -1\n")
    _register()
    result = CliRunner().invoke(app, ["dataset", "build", str(run), "--out", str(tmp_path / "o"),
                                      "--filters", str(rules)])  # fmt: skip
    assert result.exit_code == 2 and "max_repeats must be a non-negative integer" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_decontaminate_by_id_and_by_problem_text(run: Path, tmp_path: Path) -> None:
    tasks = {
        json.loads(x)["instance_id"]: json.loads(x) for x in (run / "tasks.jsonl").read_text().splitlines()
    }
    same_issue = "  " + tasks[CSVLITE]["problem_statement"].upper().replace(" ", "\n  ")
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(json.dumps({"instance_id": CONFETTI}) + "\n"
                       + json.dumps({"instance_id": "other__x-1", "problem_statement": same_issue}) + "\n")  # fmt: skip
    report = build([run], tmp_path / "o", exclude=task_ids(evalset))
    assert report["stages"]["stage1"]["dropped"] == {"decontaminated": 2}
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"instance_id": "x__y-1", "problem_statement": "another issue"}) + "\n")
    assert build([run], tmp_path / "p", exclude=task_ids(other))["stages"]["stage1"]["dropped"] == {}


def test_links_fifos_and_oversized_files_in_a_run_are_never_read(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path / "run")
    outside = _copy(run, tmp_path / "outside")
    # An attempts/ directory swapped for a link to another tree, and a unit.json that is a FIFO.
    shutil.rmtree(copy / "instances" / CONFETTI / "attempts")
    (copy / "instances" / CONFETTI / "attempts").symlink_to(outside / "instances" / CONFETTI / "attempts")
    unit = _att(copy, CSVLITE) / "unit.json"
    unit.unlink()
    os.mkfifo(unit)
    assert attempts(copy) == []  # returns at once: a FIFO is opened non-blocking and is not regular
    os.unlink(unit)
    unit.write_text(json.dumps({"instance_id": CSVLITE, "verdict": {"category": "resolved"}}))
    import devloop.dataset.collect as collect

    cap, collect.MAX_FILE_BYTES = collect.MAX_FILE_BYTES, 10
    try:
        assert attempts(copy) == []
    finally:
        collect.MAX_FILE_BYTES = cap
    assert [a["instance_id"] for a in attempts(copy)] == [CSVLITE]
    run_link = tmp_path / "link"
    run_link.symlink_to(copy)
    assert attempts(run_link) == []


def test_inspect_escapes_control_characters_and_report_cells_escape_pipes(run: Path, tmp_path: Path) -> None:
    build([run], tmp_path / "o")
    train = tmp_path / "o" / "stage1" / "train.jsonl"
    rows = [json.loads(x) for x in train.read_text().splitlines()]
    rows[0]["messages"][1]["content"] = "\x1b]52;c;cGF5bG9hZA==\x07 planted"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _register()
    result = CliRunner().invoke(app, ["dataset", "inspect", str(tmp_path / "o")])
    assert result.exit_code == 0 and "planted" in result.output and "[assistant]" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\\x1b]52" in result.output
    assert cell("a|b\n| x") == "a\\|b \\| x"


def test_denials_rollbacks_patch_size_and_reviews_are_judged(run: Path) -> None:
    from devloop.dataset.filters import STAGE2, judge, measures

    (a,) = [x for x in attempts(run) if x["instance_id"] == CONFETTI]
    steps = [e for e in a["events"] if e["type"] == "step"]
    assert judge(a, measures(a), STAGE2)[1] == []
    # A denied call made again at once is unanswered; answered by another call, it is fine.
    denied = {
        **steps[0],
        "observations": [{"text": "Not run", "is_error": True, "meta": {"policy": {"action": "deny"}}}],
    }
    looped = {**a, "events": [a["events"][0], denied, {**steps[0]}, *a["events"][2:]]}
    assert measures(looped)["denials_unanswered"] == 1
    answered = {**a, "events": [a["events"][0], denied, *a["events"][2:]]}
    assert measures(answered)["denials_unanswered"] == 0
    assert "unanswered_denial" in judge(looped, measures(looped), STAGE2)[1]
    rescued = {**a, "result": {"rollbacks": 1}}
    assert "rollback_or_rescue" in judge(rescued, measures(rescued), STAGE2)[1]
    big = {**a, "patch": a["patch"] + "".join(f"+line {i}\n" for i in range(200))}
    assert "patch_too_large" in judge(big, measures(big), STAGE2)[1]
    rejected = {**a, "review": {"action": "reject"}}
    assert "review_not_accepted" in judge(rejected, measures(rejected), STAGE2)[1]
    assert judge({**a, "review": {"action": "accept"}}, measures(a), STAGE2)[1] == []


def test_minimisation_gives_a_refiner_triple(run: Path) -> None:
    from devloop.dataset.extra import refiner_triples

    (a,) = [x for x in attempts(run) if x["instance_id"] == CONFETTI]
    assert refiner_triples([a]) == []  # not minimised, not reviewed
    longer = a["patch"] + "+print('debug')\n"
    events = [
        *a["events"][:-2],
        {**a["events"][-2], "patch": longer},
        a["events"][-1],
    ]  # the last step's patch
    mini = {
        **a,
        "events": events,
        "result": {"minimize": {"size_before": 14, "size_after": 13, "verified": True}},
    }
    (triple,) = refiner_triples([mini])
    assert (
        triple["source"] == "minimize" and triple["patch"] == longer and triple["refined_patch"] == a["patch"]
    )
    assert "tests/test_env.py::test_nested_boolean" in triple["tests"] and triple["verified"]


def test_bad_user_rules_are_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "f.toml"
    for text, message in (
        ('[rules.x]\nmeasure = "speed"\nmax = 1\n', "measure must be one of"),
        ('[rules.x]\npattern = "("\n', "not a regular expression"),
        ('[rules.x]\nall = ["nope"]\n', "'nope' is not a flag rule"),
        ('[rules.finished]\nmeasure = "steps"\nmax = 1\n', "is a built-in rule"),
        ("[stage3]\n", "unknown table [stage3]"),
    ):
        rules.write_text(text)
        try:
            load_filters(rules)
        except ValueError as exc:
            assert message in str(exc) and "\n" not in str(exc), (text, exc)
        else:
            raise AssertionError(f"accepted: {text!r}")


def test_fields_of_the_wrong_type_in_a_run_are_dropped_not_a_traceback(run: Path, tmp_path: Path) -> None:
    copy = _copy(run, tmp_path / "run")
    traj = _att(copy, CONFETTI) / "agent" / "trajectory.jsonl"
    events = [json.loads(x) for x in traj.read_text().splitlines()]
    events[0]["settings"]["tool_format"] = "bogus"  # a format this install does not know
    steps = [e for e in events if e["type"] == "step"]
    steps[0]["feedback"], steps[0]["completion"] = 1, 7
    steps[1]["observations"] = True
    steps[-1]["calls"] = 5
    traj.write_text("".join(json.dumps(e) + "\n" for e in events))
    unit = json.loads((_att(copy, CSVLITE) / "unit.json").read_text())
    kept = unit["verdict"]["tests_status"]["PASS_TO_PASS"]["success"]
    unit["verdict"]["tests_status"]["FAIL_TO_PASS"] = {"success": 5, "failure": True}
    (_att(copy, CSVLITE) / "unit.json").write_text(json.dumps(unit))
    report = build([copy], tmp_path / "o", renders=("native", "xml"), fmt="mistral")
    assert report["attempts"] == 2
    found = {a["instance_id"]: a for a in attempts(copy)}
    assert found[CONFETTI]["events"][1]["completion"] == {"content": "", "tool_calls": []}
    assert [s["calls"] for s in found[CONFETTI]["events"] if s["type"] == "step"][-1] == []
    assert kept and found[CSVLITE]["tests"] == sorted(kept)  # the bad group is left out, the other read
    xml = [
        r for r in _rows(tmp_path / "o", "stage1") if r["instance_id"] == CONFETTI and r["render"] == "xml"
    ]
    assert xml and xml[0]["messages"][0]["role"] == "system"


def test_the_shipped_defaults_are_a_filters_file(run: Path, tmp_path: Path) -> None:
    from devloop.dataset.filters import STAGE1, STAGE2

    _register()
    shown = CliRunner().invoke(app, ["dataset", "rules"])
    assert shown.exit_code == 0 and "[stage1]" in shown.output and "per_instance = 1" in shown.output
    mine = tmp_path / "filters.toml"
    mine.write_text(shown.output)
    assert load_filters(mine) == load_filters(None) == {"stage1": STAGE1, "stage2": STAGE2}
    assert STAGE2["resolved"] and STAGE2["max_steps"] == 30 and "resolved" not in STAGE1
    # Edited (stage 1 stricter, stage 2's step limit left out), the copy is laid over the defaults.
    mine.write_text(shown.output.replace("max_steps = 30", "").replace("max_steps = 100", "max_steps = 5"))
    report = build([run], tmp_path / "o", filters=load_filters(mine))
    assert report["stages"]["stage1"]["dropped"] == {"too_many_steps": 1}  # csvlite's oracle takes 6 steps
    assert report["stages"]["stage2"]["rules"]["max_steps"] == 30  # a rule left out keeps its default


def _spread(run: Path, dest: Path, repos: dict[str, int]) -> Path:
    """The shared run's confetti attempt copied under new instance ids: `repos[name]` instances in
    repository `name`, each with a patch of its own (so none is a duplicate of another)."""
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("instances"))
    task = json.loads((run / "tasks.jsonl").read_text().splitlines()[0])
    tasks = []
    for repo, count in repos.items():
        for k in range(count):
            iid = f"{repo.replace('/', '__')}-{k + 1}"
            shutil.copytree(run / "instances" / CONFETTI, dest / "instances" / iid, symlinks=True)
            unit = json.loads((_att(run, CONFETTI) / "unit.json").read_text())
            _edit_unit(_att(dest, iid), instance_id=iid, patch=unit["patch"] + f"+{iid}\n")
            tasks.append(
                json.dumps({**task, "instance_id": iid, "repo": repo, "problem_statement": f"issue {iid}"})
            )
    (dest / "tasks.jsonl").write_text("\n".join(tasks) + "\n")
    return dest


def test_split_keeps_each_repository_on_one_side_and_balance_caps_the_largest(
    run: Path, tmp_path: Path
) -> None:
    sizes = {"org/a": 6, "org/b": 2, "org/c": 1, "org/d": 2, "org/e": 1, "org/f": 1}
    spread = _spread(run, tmp_path / "run", sizes)
    report = build([spread], tmp_path / "o", valid_fraction=0.5)
    s1, s2 = report["stages"]["stage1"], report["stages"]["stage2"]
    assert sum(s1["kept"].values()) == 13 and s1["dropped"] == {}
    sides: dict[str, set[str]] = {}
    for r in [json.loads(x) for x in (tmp_path / "o" / "trajectories.jsonl").read_text().splitlines()]:
        sides.setdefault(r["instance_id"].rsplit("-", 1)[0], set()).add(r["stages"]["stage1"]["split"])
    assert all(len(s) == 1 for s in sides.values())  # no repository in both
    assert {s for v in sides.values() for s in v} == {"train", "valid"}  # and both splits have rows
    # Stage 2: the median repository has 1.5 attempts, so at most 3 come from org/a.
    assert s2["per_repo"]["org/a"] == 3 and s2["dropped"] == {"balance_repos": 3}
    assert {k: v for k, v in s2["per_repo"].items() if k != "org/a"} == {
        k: v for k, v in sizes.items() if k != "org/a"
    }
    by_instance = build([spread], tmp_path / "i", valid_fraction=0.5, split_by="instance")
    per_split: dict[str, set[str]] = {}
    for split in ("train", "valid"):
        for row in _rows_of(tmp_path / "i" / "stage1" / f"{split}.jsonl"):
            per_split.setdefault(split, set()).add(row["instance_id"].rsplit("-", 1)[0])
    assert per_split["train"] & per_split["valid"]  # by instance, a repository may be on both sides
    assert sum(by_instance["stages"]["stage1"]["kept"].values()) == 13


def _rows_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_a_patch_the_grader_could_not_apply_and_an_overlong_conversation_are_dropped(
    run: Path, tmp_path: Path
) -> None:
    copy = _copy(run, tmp_path / "run")
    unit = json.loads((_att(copy, CONFETTI) / "unit.json").read_text())
    unit["verdict"] = {**unit["verdict"], "category": "patch_apply_failed", "patch_applied_with": None}
    (_att(copy, CONFETTI) / "unit.json").write_text(json.dumps(unit))
    rules = tmp_path / "f.toml"
    rules.write_text("[stage1]\nresolved_or_tests_green = false\nmax_tokens = 2000\n")
    report = build([copy], tmp_path / "o", filters=load_filters(rules))
    records = {r["instance_id"]: r for r in _rows_of(tmp_path / "o" / "trajectories.jsonl")}
    assert "patch_does_not_apply" in records[CONFETTI]["stages"]["stage1"]["failed"]
    tokens = records[CSVLITE]["measures"]["tokens"]
    assert tokens > 2000 and "too_many_tokens" in records[CSVLITE]["stages"]["stage1"]["failed"]
    assert report["stages"]["stage1"]["dropped"] == {"patch_does_not_apply": 1, "too_many_tokens": 1}


def test_a_chart_of_many_repositories_shows_the_largest(tmp_path: Path) -> None:
    import matplotlib.image

    from devloop.dataset.report import MAX_BARS, plots

    per_repo = {f"org/repo{i:03d}": 1 + i % 7 for i in range(120)}
    stage = {"per_repo": per_repo, "rejections": {"unresolved": 3}}
    report = {"stages": {"stage1": stage, "stage2": stage}}
    assert plots(report, {"stage1": [900, 1200], "stage2": [900]}, tmp_path) == [
        "token_lengths.png", "per_repo.png", "rejections.png",
    ]  # fmt: skip
    tall = matplotlib.image.imread(tmp_path / "per_repo.png").shape[0]
    short = matplotlib.image.imread(tmp_path / "rejections.png").shape[0]
    # At most MAX_BARS labels of two bars each (0.3 inch a bar, 80 dpi), not 120: about 2,000 pixels, not 5,900.
    assert short < 400 and tall <= (0.3 * MAX_BARS * 2 + 1.6) * 80 + 1


def test_inspect_shows_the_example_as_a_mistral_tokenizer_encodes_it(run: Path, tmp_path: Path) -> None:
    build([run], tmp_path / "o")
    _register()
    result = CliRunner().invoke(app, ["dataset", "inspect", str(tmp_path / "o"), "--tokenizer", "mistral"])
    assert result.exit_code == 0, result.output
    head, text = result.output.split("as mistral_instruct_tokenizer_241114.model.v7 encodes it: ")[1].split(
        "\n", 1
    )
    assert int(head.split()[0]) > 500 and head.endswith("tokens")
    # The control tokens a Mistral model is trained on: the tool list, then each call and its result.
    assert text.startswith("<s>[SYSTEM_PROMPT]") and "[AVAILABLE_TOOLS]" in text and "[/TOOL_RESULTS]" in text
    assert '[TOOL_CALLS][{"name": "finish"' in text and "\u2581" not in text  # readable text, not pieces
    build([run], tmp_path / "s", fmt="sharegpt")
    bad = CliRunner().invoke(app, ["dataset", "inspect", str(tmp_path / "s"), "--tokenizer", "mistral"])
    assert bad.exit_code == 2 and "sharegpt" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_the_report_is_scrubbed_like_the_rows(run: Path, tmp_path: Path) -> None:
    token = "ghp_" + "a1B2c3D4e5" * 4
    copy = _copy(run, tmp_path / "run")
    lines = (copy / "tasks.jsonl").read_text().splitlines()
    lines = [json.dumps({**json.loads(x), "repo": f"/home/alice/{token}"}) for x in lines]
    (copy / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    report = build([copy], tmp_path / "o")
    written = "".join(
        p.read_text() for p in (tmp_path / "o").rglob("*") if p.suffix in (".json", ".md", ".jsonl")
    )
    assert token not in written and "alice" not in written and "/home/user/[REDACTED]" in written
    assert report["stages"]["stage1"]["per_repo"] == {"/home/user/[REDACTED]": 2}
