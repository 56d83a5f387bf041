"""Loading tasks and predictions: formats, `file:line: field: problem` errors, the official SWE-bench files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.tasks import (
    Prediction,
    TaskLoadError,
    load_predictions,
    load_suite,
    load_tasks,
    write_predictions,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "swebench"
FULL_LITE = Path(__file__).parents[3] / "shared" / "data" / "swe-bench-lite.json"

GOOD = {"instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc", "problem_statement": "p",
        "FAIL_TO_PASS": ["t::x"], "PASS_TO_PASS": []}  # fmt: skip


def test_sample_of_official_lite_records_loads_with_json_string_lists():
    result = load_tasks(FIXTURES / "lite-sample.json")
    assert result.skipped == [] and len(result.tasks) == 10
    task = next(t for t in result.tasks if t.instance_id == "pytest-dev__pytest-5221")
    assert isinstance(task.FAIL_TO_PASS, list) and task.FAIL_TO_PASS
    assert task.environment is None and task.version == "4.4"


@pytest.mark.skipif(not FULL_LITE.is_file(), reason="the full SWE-bench Lite file lives in ../shared")
def test_all_300_lite_records_load():
    result = load_tasks(FULL_LITE, strict=True)
    assert len(result.tasks) == 300 and len({t.instance_id for t in result.tasks}) == 300


def test_jsonl_bad_records_are_skipped_with_file_line_field(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [json.dumps(GOOD), "", "{not json", json.dumps({**GOOD, "instance_id": "a__b-2", "FAIL_TO_PASS": "[oops"}),
            json.dumps({**GOOD, "instance_id": "a__b-3", "environment": {"python": "3.9", "instal": "x"}}),
            json.dumps({k: v for k, v in GOOD.items() if k != "repo"} | {"instance_id": "a__b-4"}),
            json.dumps(GOOD)]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    result = load_tasks(path)
    assert [t.instance_id for t in result.tasks] == ["a__b-1"]
    assert result.skipped[0].startswith(f"{path}:3: json: ")
    assert result.skipped[1].startswith(f"{path}:4: FAIL_TO_PASS: not a JSON list")
    assert result.skipped[2] == f"{path}:5: environment.instal: Extra inputs are not permitted"
    assert result.skipped[3] == f"{path}:6: repo: missing"
    assert result.skipped[4] == f"{path}:7: instance_id: duplicate of line 1"


def test_strict_makes_the_first_bad_record_fatal(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(
        json.dumps([GOOD, {**GOOD, "instance_id": "x", "environment": {"python": "three"}}], indent=1)
    )
    with pytest.raises(TaskLoadError, match=r"tasks\.json:\d+: environment\.python: expected a version"):
        load_tasks(path, strict=True)
    assert len(load_tasks(path).skipped) == 1


def test_json_list_reports_the_line_where_each_record_starts(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text('[\n  {"instance_id": "a", "repo": "a/b"},\n\n  ' + json.dumps(GOOD) + "\n]\n")
    result = load_tasks(path)
    assert result.skipped == [f"{path}:2: base_commit: missing (+2 more)"]
    assert [t.instance_id for t in result.tasks] == ["a__b-1"]


def test_json_dict_by_id_takes_ids_from_keys(tmp_path):
    path = tmp_path / "tasks.json"
    record = {k: v for k, v in GOOD.items() if k != "instance_id"}
    path.write_text(json.dumps({"k__k-1": record, "k__k-2": {**record, "instance_id": "other"}}))
    result = load_tasks(path)
    assert [t.instance_id for t in result.tasks] == ["k__k-1"]
    assert "differs from its key" in result.skipped[0]


def test_broken_json_file_and_wrong_suffix_are_one_line_errors(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text('[\n {"a": 1},\n {"b": \n')
    with pytest.raises(TaskLoadError, match=r"tasks\.json:\d+: json: "):
        load_tasks(path)
    with pytest.raises(TaskLoadError, match="must be a .json or .jsonl file"):
        load_tasks(tmp_path / "tasks.csv")
    with pytest.raises(TaskLoadError, match="no such file"):
        load_tasks(tmp_path / "missing.jsonl")


def test_relative_repo_path_resolves_against_the_task_file(tmp_path):
    path = tmp_path / "sub" / "tasks.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({**GOOD, "repo_path": "../repo"}) + "\n")
    assert load_tasks(path).tasks[0].repo_path == (tmp_path / "repo").resolve()


def test_predictions_gold_empty_and_files_round_trip(tmp_path):
    tasks = load_tasks(FIXTURES / "lite-sample.json").tasks
    gold = load_predictions("gold", tasks)
    assert gold["pallets__flask-4045"].model_patch == next(
        t.patch for t in tasks if t.instance_id == "pallets__flask-4045"
    )
    assert all(p.model_patch == "" for p in load_predictions("empty", tasks).values())
    for name in ("preds.jsonl", "preds.json"):
        write_predictions(tmp_path / name, gold)
        assert load_predictions(tmp_path / name, tasks) == gold
    by_id = tmp_path / "by_id.json"
    by_id.write_text(json.dumps({"x": {"model_name_or_path": "m", "model_patch": None}}))
    assert load_predictions(by_id, tasks) == {"x": Prediction(instance_id="x", model_name_or_path="m")}


def test_bad_prediction_is_fatal_with_file_line_field(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text('{"instance_id": "a", "model_patch": ""}\n{"model_patch": "x"}\n')
    with pytest.raises(TaskLoadError, match=r"preds\.jsonl:2: instance_id: missing"):
        load_predictions(path, [])
    with pytest.raises(TaskLoadError, match="'gold', 'empty'"):
        load_predictions("golden", [])


def test_unknown_suite_is_an_error(tmp_path):
    with pytest.raises(TaskLoadError, match="only suite is 'builtin'"):
        load_suite("lite", tmp_path)
