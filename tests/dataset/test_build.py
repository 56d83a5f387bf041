"""`devloop dataset build` on a real oracle eval of two builtin tasks, plus one failed (empty) attempt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devloop.dataset.build import build, load_filters, task_ids

from .conftest import IDS


def devloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devloop", *args], capture_output=True, text=True, timeout=600
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_build_writes_both_renders_and_is_byte_identical(run: Path, tmp_path: Path) -> None:
    proc = devloop("dataset", "build", str(run), "--out", str(tmp_path / "a"), "--render", "native,xml")
    assert proc.returncode == 0, proc.stderr
    build([run], tmp_path / "b", renders=("native", "xml"))
    for rel in ("stage1/train.jsonl", "stage1/valid.jsonl", "stage2/train.jsonl", "filter_report.json"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    got = rows(tmp_path / "a/stage1/train.jsonl") + rows(tmp_path / "a/stage1/valid.jsonl")
    assert sorted({(r["instance_id"], r["render"]) for r in got}) == sorted(
        (i, r) for i in IDS.split(",") for r in ("native", "xml")
    )
    native = next(r for r in got if r["render"] == "native")["messages"]
    xml = next(r for r in got if r["render"] == "xml")["messages"]
    assert native[0]["role"] == "system" and native[1]["role"] == "user"
    call = next(m for m in native if m.get("tool_calls"))["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], str)  # JSON string, never a merged struct
    assert any("<function=str_replace_editor>" in m["content"] for m in xml if m["role"] == "assistant")
    inspect = devloop("dataset", "inspect", str(tmp_path / "a"))
    assert inspect.returncode == 0 and "stage1/train:" in inspect.stdout


def test_split_never_shares_a_repo_and_decontamination_drops_ids(run: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "eval.jsonl"
    tasks.write_text(json.dumps({"instance_id": "devloop__csvlite-1"}) + "\n")
    report = build([run], tmp_path / "d", valid_fraction=0.5, exclude=task_ids(tasks))
    assert report["stages"]["stage1"]["dropped"] == {"decontaminated": 1}
    kept = rows(tmp_path / "d/stage1/train.jsonl") + rows(tmp_path / "d/stage1/valid.jsonl")
    assert [r["instance_id"] for r in kept] == ["devloop__confetti-1"]
    train = {r["instance_id"] for r in rows(tmp_path / "d/stage1/train.jsonl")}
    valid = {r["instance_id"] for r in rows(tmp_path / "d/stage1/valid.jsonl")}
    assert not train & valid


def test_filters_file_overrides_and_rejects_unknown_rules(run: Path, tmp_path: Path) -> None:
    strict = tmp_path / "f.toml"
    strict.write_text("[stage2]\nmax_steps = 1\n")
    report = build([run], tmp_path / "s", filters=load_filters(strict))
    assert report["stages"]["stage2"]["dropped"] == {"too_many_steps": 2}
    assert sum(report["stages"]["stage1"]["kept"].values()) == 2
    strict.write_text("[stage1]\nbogus = 1\n")
    proc = devloop("dataset", "build", str(run), "--out", str(tmp_path / "x"), "--filters", str(strict))
    assert proc.returncode == 2 and "unknown rule 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_symlinked_trajectory_is_not_followed(run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True, ignore=shutil.ignore_patterns("repo", "cache"))
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"type": "start", "system": "HOST SECRET"}) + "\n")
    traj = copy / "instances/devloop__confetti-1/attempts/0/agent/trajectory.jsonl"
    traj.unlink()
    traj.symlink_to(secret)
    report = build([copy], tmp_path / "o")
    text = (tmp_path / "o/stage1/train.jsonl").read_text() + (tmp_path / "o/stage1/valid.jsonl").read_text()
    # The attempt is dropped (nothing to train on), not turned into a row with an empty conversation.
    assert "HOST SECRET" not in text and "devloop__confetti-1" not in text and "devloop__csvlite-1" in text
    assert report["stages"]["stage1"]["dropped"] == {"no_trajectory": 1}


def test_preference_pairs_and_the_datasets_copy(run: Path, tmp_path: Path) -> None:
    import shutil

    import datasets

    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True, ignore=shutil.ignore_patterns("repo", "cache"))
    # A second, failed attempt at one instance: attempt 0's record with another patch, graded unresolved.
    attempts = copy / "instances/devloop__confetti-1/attempts"
    shutil.copytree(attempts / "0", attempts / "1", symlinks=True)
    unit = json.loads((attempts / "1/unit.json").read_text())
    unit["index"], unit["verdict"]["category"] = 1, "unresolved"
    unit["patch"] += "+another change\n"  # the same patch twice would be one pair (deduplicated)
    (attempts / "1/unit.json").write_text(json.dumps(unit))
    report = build([copy], tmp_path / "o")
    assert report["preferences"] == 1 and report["stages"]["stage1"]["dropped"] == {"unresolved": 1}
    (pair,) = rows(tmp_path / "o/preferences/pairs.jsonl")
    assert pair["instance_id"] == "devloop__confetti-1"
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"] and pair["chosen"] and pair["rejected"]
    hf = datasets.load_from_disk(str(tmp_path / "o/stage1/hf"))
    assert sum(split.num_rows for split in hf.values()) == 2
    first = next(iter(hf.values()))[0]
    assert first["messages"][0]["role"] == "system" and isinstance(json.loads(first["tools"]), list)


def test_the_inference_system_prompt_is_swapped_in(run: Path, tmp_path: Path) -> None:
    prompt = tmp_path / "system.txt"
    prompt.write_text("You are the deployed agent. Fix the issue, then call finish.")
    proc = devloop("dataset", "build", str(run), "--out", str(tmp_path / "o"), "--render", "native,xml",
                   "--system-prompt", str(prompt))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = rows(tmp_path / "o/stage1/train.jsonl") + rows(tmp_path / "o/stage1/valid.jsonl")
    native = [r["messages"][0]["content"] for r in got if r["render"] == "native"]
    xml = [r["messages"][0]["content"] for r in got if r["render"] == "xml"]
    assert native == [prompt.read_text()] * 2
    assert all(x.startswith(prompt.read_text() + "\n") and "<parameter=" in x for x in xml) and len(xml) == 2
    assert all(r["messages"][1]["role"] == "user" and r["messages"][2]["role"] == "assistant" for r in got)
    kto = rows(tmp_path / "o/preferences/kto.jsonl")
    assert {r["prompt"][0]["content"] for r in kto} == {prompt.read_text()}
    assert json.loads((tmp_path / "o/filter_report.json").read_text())["system_prompt"] == "swapped"
    missing = devloop(
        "dataset", "build", str(run), "--out", str(tmp_path / "x"), "--system-prompt", str(tmp_path / "nope")
    )
    assert missing.returncode == 2 and "nope" in missing.stderr and "Traceback" not in missing.stderr
