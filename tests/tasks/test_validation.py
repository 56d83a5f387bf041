"""Task and prediction files are input: unsafe ids and patch paths are refused at load, `file:line: field:`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.parse.diffs import touched_paths
from devloop.tasks import Prediction, Task, TaskLoadError, load_predictions, load_tasks
from devloop.tasks.safety import MAX_ID_LENGTH, check_component, patch_paths, patch_problem, path_problem

FIXTURES = Path(__file__).parents[1] / "fixtures" / "swebench"

GOOD = {"instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc", "problem_statement": "p",
        "FAIL_TO_PASS": ["t::x"], "PASS_TO_PASS": []}  # fmt: skip

BAD_IDS = [
    ("..", "'..' names a directory, not an instance"),
    (".", "'.' names a directory, not an instance"),
    ("a/b", "'a/b' contains '/': it must be a single path component"),
    ("../../etc", "'../../etc' contains '/': it must be a single path component"),
    ("a\\b", "'a\\\\b' contains '\\\\': it must be a single path component"),
    ("x\x00y", "'x\\x00y' contains a NUL byte"),
    ("x\ny", "'x\\ny' contains a control character"),
    ("x\x1b[2Jy", "'x\\x1b[2Jy' contains a control character"),
    ("-rf", "'-rf' starts with '-'"),
    (".hidden", "'.hidden' starts with '.'"),
    ("a b", "'a b' contains ' ': use letters, digits and ._+=- (like astropy__astropy-12907)"),
    (
        "caf\u00e9",
        "'caf\u00e9' contains '\u00e9': use letters, digits and ._+=- (like astropy__astropy-12907)",
    ),
    ("x" * (MAX_ID_LENGTH + 1), f"is {MAX_ID_LENGTH + 1} characters long (at most {MAX_ID_LENGTH})"),
    ("", "String should have at least 1 character"),
    (7, "Input should be a valid string"),
]


def _jsonl(tmp_path: Path, *records: dict) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(("bad", "problem"), BAD_IDS, ids=[repr(b)[:20] for b, _ in BAD_IDS])
def test_bad_instance_id_is_refused_with_file_line_field(tmp_path, bad, problem):
    path = _jsonl(tmp_path, GOOD, {**GOOD, "instance_id": bad})
    result = load_tasks(path)
    assert [t.instance_id for t in result.tasks] == ["a__b-1"]
    if len(str(bad)) > MAX_ID_LENGTH:
        assert result.skipped[0].startswith(f"{path}:2: instance_id: ")
        said = result.skipped[0].split(": instance_id: ", 1)[1]  # after the file:line, whatever its length
        assert said.endswith(problem) and len(said) < 150  # the id is cut short
    else:
        assert result.skipped == [f"{path}:2: instance_id: {problem}"]
    with pytest.raises(TaskLoadError) as err:
        load_tasks(path, strict=True)
    assert str(err.value) == result.skipped[0] and "\n" not in str(err.value)


def test_bad_id_in_a_json_list_names_the_line_where_its_record_starts(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(
        "[\n" + json.dumps(GOOD) + ",\n\n" + json.dumps({**GOOD, "instance_id": ".."}, indent=1) + "\n]\n"
    )
    assert load_tasks(path).skipped == [f"{path}:4: instance_id: '..' names a directory, not an instance"]


def test_bad_id_as_a_dict_key_is_refused(tmp_path):
    path = tmp_path / "tasks.json"
    record = {k: v for k, v in GOOD.items() if k != "instance_id"}
    path.write_text(f'{{\n "ok__ok-1": {json.dumps(record)},\n\n "a/b":\n  {json.dumps(record)}\n}}\n')
    result = load_tasks(path)
    assert [t.instance_id for t in result.tasks] == ["ok__ok-1"]
    assert result.skipped == [
        f"{path}:5: instance_id: 'a/b' contains '/': it must be a single path component"
    ]


def _patch(old: str, new: str | None = None) -> str:
    new = old if new is None else new
    return f"diff --git a/{old} b/{new}\n--- a/{old}\n+++ b/{new}\n@@ -1 +1 @@\n-x\n+y\n"


BAD_PATHS = [
    (_patch("../outside"), "path '../outside' has a '..' component"),
    (_patch("tests/../../outside"), "path 'tests/../../outside' has a '..' component"),
    ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-x\n+y\n", "path '/etc/passwd' is absolute"),
    (_patch("/etc/passwd"), "path '/etc/passwd' is absolute"),
    (_patch(".git/config"), "path '.git/config' is inside .git/"),
    (_patch("sub/.GIT/hooks/pre-commit"), "path 'sub/.GIT/hooks/pre-commit' is inside .git/"),
    (_patch(".git"), "path '.git' is inside .git/"),
    (_patch("a/./b.py"), "path 'a/./b.py' is not normalised"),
    (_patch("a//b.py"), "path 'a//b.py' is not normalised"),
    ('--- "a/x\\000y"\n+++ "b/x\\000y"\n@@ -1 +1 @@\n-x\n+y\n', "path 'x\\x00y' contains a NUL byte"),
    (
        '--- "a/x\\033y"\n+++ "b/x\\033y"\n@@ -1 +1 @@\n-x\n+y\n',
        "path 'x\\x1by' contains a control character",
    ),
    (
        "diff --git a/ok.py b/ok.py\nsimilarity index 100%\nrename from ok.py\nrename to ../ok.py\n",
        "path '../ok.py' has a '..' component",
    ),
    (
        "diff --git a/ok.py b/../ok.py\nold mode 100644\nnew mode 100755\n",
        "path '../ok.py' has a '..' component",
    ),
    (
        _patch("tests/test_$(id).py"),
        "path 'tests/test_$(id).py' contains '$', which the test command's shell would interpret",
    ),
    (
        _patch("tests/test a.py"),
        "path 'tests/test a.py' contains ' ', which the test command's shell would interpret",
    ),
]


@pytest.mark.parametrize(("patch", "problem"), BAD_PATHS, ids=[p for _, p in BAD_PATHS])
def test_unsafe_test_patch_path_is_refused_with_file_line_field(tmp_path, patch, problem):
    path = _jsonl(tmp_path, {**GOOD, "test_patch": patch})
    with pytest.raises(TaskLoadError) as err:
        load_tasks(path, strict=True)
    assert str(err.value) == f"{path}:1: test_patch: {problem}"


def test_gold_patch_paths_are_checked_but_only_test_paths_for_shell_characters(tmp_path):
    path = _jsonl(tmp_path, {**GOOD, "patch": _patch("../x.py")}, {**GOOD, "instance_id": "s-1",
                  "patch": _patch("docs/a b.txt")})  # fmt: skip
    result = load_tasks(path)
    assert result.skipped == [f"{path}:1: patch: path '../x.py' has a '..' component"]
    assert [t.instance_id for t in result.tasks] == ["s-1"]


def test_valid_official_records_still_load_and_every_touched_path_is_checked():
    result = load_tasks(FIXTURES / "lite-sample.json", strict=True)
    assert len(result.tasks) == 10
    for task in result.tasks:
        for patch in (task.patch, task.test_patch):
            # The checker reads at least every path the harness acts on.
            assert set(touched_paths(patch)) <= set(patch_paths(patch)) and touched_paths(patch)


def test_bad_prediction_id_is_a_load_error_but_an_unsafe_model_patch_is_not(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"instance_id": "ok-1", "model_patch": _patch("../../etc/cron.d/x")}) + "\n"
                     + json.dumps({"instance_id": "x\x00y", "model_patch": ""}) + "\n")  # fmt: skip
    with pytest.raises(TaskLoadError) as err:
        load_predictions(preds, [])
    assert str(err.value) == f"{preds}:2: instance_id: 'x\\x00y' contains a NUL byte"
    preds.write_text(preds.read_text().splitlines()[0] + "\n")
    loaded = load_predictions(preds, [])
    # Loaded as data: grading refuses it for that instance only (tests/sandbox/test_escapes_inputs.py).
    assert patch_problem(loaded["ok-1"].model_patch) == "path '../../etc/cron.d/x' has a '..' component"


def test_bad_prediction_key_in_a_dict_file_names_its_line(tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text('{\n "ok-1": {"model_patch": ""},\n "..": {"model_patch": ""}\n}\n')
    with pytest.raises(TaskLoadError, match=r"^.*preds\.json:3: instance_id: '\.\.' names a directory"):
        load_predictions(preds, [])


def test_deeply_nested_json_is_a_one_line_error_not_a_recursion_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_text(json.dumps(GOOD) + "\n" + '{"x": ' + deep + "}\n")
    assert load_tasks(jsonl).skipped == [f"{jsonl}:2: json: nested too deeply"]
    listed = tmp_path / "tasks.json"
    listed.write_text("[\n" + json.dumps(GOOD) + ",\n" + deep + "\n]")
    with pytest.raises(TaskLoadError) as err:
        load_tasks(listed)
    assert str(err.value) == f"{listed}:3: json: nested too deeply"


def test_repo_must_make_a_plain_mirror_directory_name(tmp_path):
    path = _jsonl(
        tmp_path, {**GOOD, "repo": ".."}, {**GOOD, "instance_id": "ok-1", "repo": "owner/.dotfiles"}
    )
    result = load_tasks(path)
    assert result.skipped == [
        f"{path}:1: repo: as a mirror directory name: '..' names a directory, not an instance"
    ]
    assert result.tasks[0].mirror_name == "owner__.dotfiles"


def test_models_refuse_unsafe_ids_when_built_in_code_too():
    with pytest.raises(ValueError, match="names a directory"):
        Task.model_validate({**GOOD, "instance_id": ".."})
    with pytest.raises(ValueError, match="contains '/'"):
        Prediction(instance_id="a/b")
    assert check_component("astropy__astropy-12907") == "astropy__astropy-12907"


@pytest.mark.parametrize(
    "good",
    [
        "astropy__astropy-12907",
        "tests/test_a.py",
        "a/b/c.txt",
        "x.rej",
        "..foo/b",
        ".github/workflows/ci.yml",
        ".gitignore",
        "src/.gitattributes",
    ],
)
def test_ordinary_paths_are_safe(good):
    assert path_problem(good) is None
