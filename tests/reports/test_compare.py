"""`devloop.reports.compare`: runs loaded from report.json, compared, rendered; bad reports named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from devloop.reports import RunReport, compare, load_run


def write_run(root: Path, name: str, resolved: list[str], unresolved: list[str], **extra: object) -> Path:
    run = root / name
    run.mkdir()
    report = {
        "resolved_ids": resolved,
        "unresolved_ids": unresolved,
        "empty_patch_ids": [],
        "error_ids": [],
        "submitted_instances": len(resolved) + len(unresolved),
        **extra,
    }
    (run / "report.json").write_text(json.dumps(report))
    return run


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """40 shared tasks: 10 both, 0 only A, 7 only B, 23 neither; A also ran 2 tasks B did not."""
    both, b_only, neither = ids("both", 10), ids("bonly", 7), ids("neither", 23)
    extra_a = ids("extra", 2)
    run_a = write_run(tmp_path, "run-a", both + extra_a[:1], b_only + neither[:20] + extra_a[1:])
    # B's failures are split across the other outcome lists: they all count as "ran".
    run_b = write_run(tmp_path, "run-b", both + b_only, neither[:20], empty_patch_ids=neither[20:])
    report_a = json.loads((run_a / "report.json").read_text())
    report_a["error_ids"] = neither[20:]
    (run_a / "report.json").write_text(json.dumps(report_a))
    return run_a, run_b


def test_compare_counts_p_value_and_ci(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    result = compare(run_a, run_b, seed=3)
    assert (result.shared, result.both, result.a_only, result.b_only, result.neither) == (40, 10, 0, 7, 23)
    assert result.b_only_ids == tuple(sorted(ids("bonly", 7)))
    assert result.only_ran_a == 2 and result.only_ran_b == 0
    assert result.diff == pytest.approx(7 / 40)
    assert result.p_value == pytest.approx(2 / 128)
    assert result.significant
    assert result.diff_ci is not None
    lo, hi = result.diff_ci
    assert 0.0 < lo < result.diff < hi < 0.5
    assert result.rate_a.value == pytest.approx(10 / 40) and result.rate_b.value == pytest.approx(17 / 40)
    assert compare(run_a, run_b, seed=3).diff_ci == result.diff_ci
    assert result.verdict().startswith(
        "B resolves 7 more of 40 shared tasks: +17.5 pts (95% paired bootstrap CI +"
    )
    assert result.verdict().endswith("; McNemar exact p=0.0156: significant at 0.05")


def test_compare_reversed_and_not_significant(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    reverse = compare(run_b / "report.json", run_a / "report.json", label_a="new", label_b="old")
    assert (reverse.a_only, reverse.b_only, reverse.net) == (7, 0, -7)
    assert reverse.diff_ci is not None and reverse.diff_ci[1] < 0
    assert reverse.verdict().startswith("old resolves 7 fewer of 40 shared tasks: -17.5 pts (95%")
    strict = compare(run_a, run_b, alpha=0.01)
    assert not strict.significant
    assert strict.verdict().endswith("not significant at 0.01: no evidence B differs from A")


def test_compare_identical_runs(runs: tuple[Path, Path]) -> None:
    run_a, _ = runs
    same = compare(run_a, run_a)
    assert same.p_value == 1.0 and same.diff == 0.0 and same.diff_ci == (0.0, 0.0)
    assert same.verdict().startswith("B resolves as many of 42 shared tasks as A: +0.0 pts")


def test_compare_disjoint_runs() -> None:
    a = {"resolved_ids": ["x"], "unresolved_ids": [], "empty_patch_ids": [], "error_ids": []}
    b = {"resolved_ids": ["y"], "unresolved_ids": [], "empty_patch_ids": [], "error_ids": []}
    result = compare(a, b)
    assert result.shared == 0 and result.diff_ci is None and not result.significant
    assert "no tasks in common" in result.verdict()
    assert result.run_a.name == "A"
    assert json.loads(json.dumps(result.to_dict()))["diff_ci"] is None


def test_to_dict_is_json_ready(runs: tuple[Path, Path]) -> None:
    data = json.loads(json.dumps(compare(*runs).to_dict()))
    assert data["b_only"] == 7 and data["shared"] == 40 and data["significant"] is True
    assert data["a"]["path"].endswith("run-a/report.json") and data["b"]["name"] == "run-b"
    assert data["a"]["shared_rate"]["value"] == pytest.approx(0.25)
    assert len(data["diff_ci"]) == 2 and data["verdict"].startswith("B resolves 7 more")
    assert "left out" in data["notes"][0]


def test_render(runs: tuple[Path, Path]) -> None:
    console = Console(record=True, width=200, color_system=None)
    result = compare(*runs)
    result.render(console)
    text = console.export_text()
    assert "17/40" in text and "10/40" in text
    assert "only B resolves" in text and "bonly-0" in text
    assert result.verdict() in text
    assert "2 task(s) ran in only one" in text


def test_load_run_accepts_report_and_object(runs: tuple[Path, Path]) -> None:
    run_a, _ = runs
    from_dir = load_run(run_a)
    from_file = load_run(run_a / "report.json")
    assert from_dir == from_file and from_dir.name == "run-a"
    assert len(from_dir.ran) == 42 and len(from_dir.resolved) == 11
    assert load_run(from_dir) is from_dir
    assert isinstance(load_run(str(run_a)), RunReport)


def bad_report(tmp_path: Path, content: str) -> Path:
    run = tmp_path / "bad"
    run.mkdir()
    (run / "report.json").write_text(content)
    return run


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        (json.dumps({"resolved_ids": []}), "field 'unresolved_ids' is missing"),
        (
            json.dumps({"resolved_ids": "a", "unresolved_ids": [], "empty_patch_ids": [], "error_ids": []}),
            "field 'resolved_ids' must be a list of task-id strings, got str",
        ),
        (
            json.dumps({"resolved_ids": [], "unresolved_ids": [], "empty_patch_ids": [], "error_ids": [3]}),
            "field 'error_ids' must be a list of task-id strings",
        ),
    ],
)
def test_bad_report_errors_name_path_and_field(tmp_path: Path, content: str, fragment: str) -> None:
    run = bad_report(tmp_path, content)
    with pytest.raises(ValueError) as info:
        compare(run, run)
    message = str(info.value)
    assert fragment in message
    assert str(run / "report.json") in message
    assert "\n" not in message


def test_missing_run_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such run directory or report file"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: no report.json in this run directory"):
        load_run(tmp_path / "empty")


def test_bad_alpha(runs: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="alpha"):
        compare(*runs, alpha=1.5)
