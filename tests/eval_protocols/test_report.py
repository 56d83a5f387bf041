"""`devloop report`: figures from units, plots written, iteration ablation from trajectories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devloop.config import load_settings
from devloop.eval import ProtocolConfig, UnitRecord, UnitStore, run_protocol
from devloop.eval.rundata import load_run_data
from devloop.eval.verdict import Category, Verdict
from devloop.reports.ablation import ablation
from devloop.reports.report import build_report, write_report
from devloop.stats import pass_at_k


def _fake_run(root: Path, run_id: str, config: ProtocolConfig, outcomes: dict[str, list[str]]) -> Path:
    """A run directory from outcomes per task ("r" resolved, "u" unresolved, "e" empty), no grading."""
    store = UnitStore(root, run_id)
    store.write_meta({"protocol": config.describe(), "settings": {"max_iterations": 50}})
    (store.root / "tasks.jsonl").write_text("".join(json.dumps({"instance_id": t}) + "\n" for t in outcomes))
    category = {"r": Category.RESOLVED, "u": Category.UNRESOLVED, "e": Category.EMPTY_PATCH}
    for iid, marks in outcomes.items():
        for i, m in enumerate(marks):
            store.write_unit(
                UnitRecord(
                    instance_id=iid,
                    index=i,
                    temperature=config.temperature_for(i),
                    max_iterations=50,
                    settings_key="k",
                    exit_status="finished",
                    patch="" if m == "e" else "diff",
                    verdict=Verdict(instance_id=iid, category=category[m]),
                )
            )
    (store.root / "report.json").write_text("{}")
    return store.root


def test_report_figures_and_plots(tmp_path: Path) -> None:
    samples = _fake_run(
        tmp_path,
        "s",
        ProtocolConfig(name="samples", samples=4, temperature=0.4),
        {"a": list("rrru"), "b": list("ruuu"), "c": list("uuuu")},
    )
    iterative = _fake_run(tmp_path, "it", ProtocolConfig(name="iterative"), {"a": list("er"), "b": list("r")})
    report = build_report([load_run_data(samples), load_run_data(iterative)])
    s, it = report["runs"]
    want = (pass_at_k(4, 3, 2) + pass_at_k(4, 1, 2) + 0) / 3
    assert abs(s["pass_at_k"][1]["pass_at_k"]["value"] - want) < 1e-12
    assert s["headline"]["metric"] == "pass@1" and abs(s["headline"]["value"] - 4 / 12) < 1e-12
    assert s["headline"]["lo"] < s["headline"]["value"] < s["headline"]["hi"]
    assert [r["attempted"] for r in it["attempts"]] == [2, 1, 0] and it["final"]["resolved"] == 2
    files = write_report(report, tmp_path / "rep")
    assert {p.name for p in files} == {
        "report.json",
        "report.md",
        "outcomes.png",
        "pass_at_k.png",
        "attempts.png",
    }
    md = (tmp_path / "rep" / "report.md").read_text()
    assert (
        "| 2 | 0.1 | 1 | 1 | 0 | 0 |" in md and "| k | pass@k (95% CI) | pass^k (95% CI) | interval |" in md
    )
    # pass@4 of 4 samples is 0/1 per task (Wilson); pass@1 and pass@2 average fractions (bootstrap)
    assert "| 1 | 33.3% (0.0..75.0) | 33.3% (0.0..75.0) | bootstrap |" in md and md.count("| Wilson |") == 1
    assert "| s | samples T=0.4 50 it | 3 | pass@1 | 33.3% (95% bootstrap CI 0.0..75.0) |" in md
    assert "no resolve rate vs max iterations plot: needs runs at two or more" in md
    assert s["outcomes"] == {"resolved": 2, "unresolved": 1} and it["outcomes"] == {"resolved": 2}
    assert all(p.stat().st_size > 5000 for p in files if p.suffix == ".png")


def test_report_cli_on_a_single_run_writes_its_plot_and_says_why_not_the_others(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, "one", ProtocolConfig(name="single"), {"a": ["r"], "b": ["u"], "c": ["e"]})
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", "report", str(run)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        lines[0].startswith("one (single T=0 50 it): resolve rate 33.3% (95% Wilson CI ")
        and "n=3)" in lines[0]
    )
    png = run / "analysis" / "outcomes.png"
    assert str(png) in lines[1] and png.stat().st_size > 5000
    gaps = lines[2:]
    assert [g.split(" plot:")[0] for g in gaps] == [
        "no pass@k",
        "no resolve rate vs max iterations",
        "no per-attempt",
    ]
    report = json.loads((run / "analysis" / "report.json").read_text())
    assert report["runs"][0]["outcomes"] == {"resolved": 1, "unresolved": 1, "empty_patch": 1}
    quiet = subprocess.run(
        [sys.executable, "-m", "devloop", "report", str(run), "--no-plots", "--out", str(tmp_path / "q")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert quiet.returncode == 0 and "plot" not in quiet.stdout and not list((tmp_path / "q").glob("*.png"))


def test_report_cli_names_a_bad_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", "report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (
        proc.returncode == 2
        and "not a devloop run directory" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_ablation_grades_the_patch_at_each_limit(calc_task, serve, env_manager, env_cache, tmp_path):
    server = serve({"A": ["fix"], "B": ["half"]})  # A: add at step 1, neg at step 2, finish; B: cut at 4
    settings = load_settings(model="openai/test", base_url=server.url, max_iterations=4)
    run_protocol([calc_task("A"), calc_task("B")], settings, ProtocolConfig(name="single"), run_id="ab",
                 output=tmp_path / "out", cache_dir=env_cache)  # fmt: skip
    run = load_run_data(tmp_path / "out" / "ab")
    run.task_ids = ["calc__calc-A"]
    rows = {r["max_iterations"]: r for r in ablation(run, [1, 2, 10], cache_dir=env_cache)}
    assert rows[1]["estimate"]["value"] == 0.0 and rows[2]["estimate"]["value"] == 1.0
    assert rows[10]["estimate"]["value"] == 1.0  # finished at step 3: the same at any larger limit
    assert (tmp_path / "out" / "ab" / "ablation" / "L1" / "calc__calc-A" / "0" / "verdict.json").is_file()
    run.task_ids = ["calc__calc-A", "calc__calc-B"]
    beyond = ablation(run, [10], cache_dir=env_cache)[0]
    assert beyond["estimate"] is None and beyond["unknown_units"] == 1  # B was cut by its own limit of 4
