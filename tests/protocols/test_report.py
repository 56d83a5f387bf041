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
from devloop.protocols.ablation import ablation
from devloop.stats import pass_at_k
from devloop.stats.report import build_report, write_report


def _fake_run(root: Path, run_id: str, config: ProtocolConfig, outcomes: dict[str, list[str]]) -> Path:
    """A run directory from outcomes per task ("r" resolved, "u" unresolved, "e" empty), no grading."""
    store = UnitStore(root, run_id)
    store.write_meta({"protocol": config.describe(), "settings": {"max_iterations": 50}})
    (store.root / "tasks.jsonl").write_text("".join(json.dumps({"instance_id": t}) + "\n" for t in outcomes))
    category = {"r": Category.RESOLVED, "u": Category.UNRESOLVED, "e": Category.EMPTY_PATCH}
    for iid, marks in outcomes.items():
        for i, m in enumerate(marks):
            store.write_unit(UnitRecord(instance_id=iid, index=i, temperature=config.temperature_for(i),
                                        max_iterations=50, settings_key="k", exit_status="finished",
                                        patch="" if m == "e" else "diff", verdict=Verdict(instance_id=iid,
                                        category=category[m])))  # fmt: skip
    (store.root / "report.json").write_text("{}")
    return store.root


def test_report_figures_and_plots(tmp_path: Path) -> None:
    samples = _fake_run(tmp_path, "s", ProtocolConfig(name="samples", samples=4, temperature=0.4),
                        {"a": list("rrru"), "b": list("ruuu"), "c": list("uuuu")})  # fmt: skip
    iterative = _fake_run(tmp_path, "it", ProtocolConfig(name="iterative"), {"a": list("er"), "b": list("r")})
    report = build_report([load_run_data(samples), load_run_data(iterative)])
    s, it = report["runs"]
    want = (pass_at_k(4, 3, 2) + pass_at_k(4, 1, 2) + 0) / 3
    assert abs(s["pass_at_k"][1]["pass_at_k"]["value"] - want) < 1e-12
    assert s["headline"]["metric"] == "pass@1" and abs(s["headline"]["value"] - 4 / 12) < 1e-12
    assert s["headline"]["lo"] < s["headline"]["value"] < s["headline"]["hi"]
    assert [r["attempted"] for r in it["attempts"]] == [2, 1, 0] and it["final"]["resolved"] == 2
    files = write_report(report, tmp_path / "rep")
    assert {p.name for p in files} == {"report.json", "report.md", "pass_at_k.png", "attempts.png"}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| 2 | 0.1 | 1 | 1 | 0 | 0 |" in md and "pass@k [95% CI]" in md
    assert all(p.stat().st_size > 5000 for p in files if p.suffix == ".png")


def test_report_cli_names_a_bad_run(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "devloop", "report", str(tmp_path / "nope")], capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip
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
