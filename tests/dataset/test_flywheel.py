"""End to end on real runs produced here: the shared oracle eval (two builtin tasks), a scripted eval
that resolves with a format error and a repeated call, a scripted samples-protocol eval whose two
attempts fail (format error, a repeated-action loop, an unresolved patch, a planted secret, an output
longer than the cap), a chat session, a reviews.jsonl written by devloop review's app (a failing attempt
corrected and the correction re-graded in the sandbox) and a `devloop run` with the pytest hook and
--minimize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from devloop.dataset.build import build, load_filters
from devloop.dataset.hygiene import scrub, task_ids
from devloop.review.app import create_app
from devloop.review.decisions import append_decision, patch_sha256
from devloop.review.items import load_runs

CONFETTI = "devloop__confetti-1"
SECRET = "sk-proj-Abc123def456Ghi789jkl012Mno345"


def devloop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devloop", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _call(name: str, **args: Any) -> dict[str, Any]:
    fn = {"name": name, "arguments": json.dumps(args)}
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": fn}]}


def _script(path: Path, entries: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return f"scripted/{path}"


def _eval(out: Path, model: str, run_id: str, *extra: str) -> Path:
    proc = devloop("eval", "--suite", "builtin", "--model", model, "--instances", CONFETTI,
                   "--output", str(out), "--run-id", run_id, "--cache-dir", str(out / "cache"), *extra)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / run_id


@pytest.fixture(scope="module")
def runs(run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("flywheel")
    oracle = [
        json.loads(x)
        for x in (run / f"instances/{CONFETTI}/attempts/0/agent/oracle.jsonl").read_text().splitlines()
    ]
    oops = {"role": "assistant", "content": "I will look at the code."}  # no call: a format error
    note = _call("str_replace_editor", command="create", path="confetti/NOTES.md", file_text="booleans\n")
    noisy = _eval(
        out, _script(out / "noisy.jsonl", [oops, *[oracle[0]] * 3, *oracle[1:-1], note, oracle[-1]]), "noisy"
    )
    failing = [oops, *[_call("execute_bash", command="ls confetti")] * 4,
               _call("str_replace_editor", command="create", path="confetti/notes.py", file_text="# TODO\n"),
               _call("execute_bash", command=f"echo {SECRET} /home/alice/project"),
               _call("execute_bash", command="seq 1 20000"),
               *[_call("execute_bash", command="git push origin HEAD")] * 2,  # denied, then tried again
               _call("finish", message="Done.")]  # fmt: skip
    fail = _eval(out, _script(out / "fail.jsonl", failing), "fail", "--protocol", "samples", "--samples", "2")
    gold = json.loads((run / "tasks.jsonl").read_text().splitlines()[0])["patch"]
    # The reviews through devloop review's own app: the correction re-graded in the sandbox, then saved.
    review = TestClient(create_app(load_runs([fail, noisy]), reviewer="ann", token="tok"))
    form = {"token": "tok", "instance_id": CONFETTI, "attempt": "0"}
    page = review.post("/api/regrade", data={**form, "run": "fail", "corrected_patch": gold})
    assert page.status_code == 200 and "re-graded: resolved" in page.text, page.text
    saved = review.post("/api/decision", data={**form, "run": "fail", "action": "correct", "corrected_patch": gold,
                                               "reason": "wrong file"})  # fmt: skip
    assert saved.status_code == 200 and saved.json()["regrade"]["category"] == "resolved"
    # The app queues no resolved attempt; a reject of one (a reviewer's, by hand) goes through its writer.
    unit = json.loads((noisy / f"instances/{CONFETTI}/attempts/0/unit.json").read_text())
    append_decision(noisy, {"instance_id": CONFETTI, "attempt": 0, "action": "reject",
                            "model_patch_sha256": patch_sha256(unit["patch"])})  # fmt: skip
    repo = out / "chatrepo"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    chat_script = [_call("execute_bash", command="cat a.py"),
                   _call("str_replace_editor", command="str_replace", path="a.py", old_str="x = 1", new_str="x = 2"),
                   _call("finish", message="Set x to 2.")]  # fmt: skip
    home = out / "chat-home"
    proc = devloop("chat", "--repo", str(repo), "-p", "set x to 2", "--model", _script(out / "chat.jsonl", chat_script),
                   env={"DEVLOOP_CHAT_HOME": str(home)})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (store,) = home.iterdir()
    return {"oracle": run, "noisy": noisy, "fail": fail, "chat": store}


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _all(out: Path, stage: str) -> list[dict[str, Any]]:
    return _rows(out / stage / "train.jsonl") + _rows(out / stage / "valid.jsonl")


@pytest.fixture(scope="module")
def built(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("built") / "ds"
    report = build(list(runs.values()), out, valid_fraction=0.5, fmt="mistral", renders=("native", "xml"))
    return out, report


def test_counts_per_stage_and_what_the_filters_reject(built: tuple[Path, dict[str, Any]]) -> None:
    out, report = built
    assert report["attempts"] == 6  # 2 oracle, 1 noisy, 2 failing samples, 1 chat turn
    s1, s2 = report["stages"]["stage1"], report["stages"]["stage2"]
    assert s1["dropped"] == {"unresolved": 3} and sum(s1["kept"].values()) == 3 * 2  # two renders a row
    assert s2["dropped"] == {"format_error": 1, "unresolved": 3} and sum(s2["kept"].values()) == 2 * 2
    # The failing samples loop 4 times and make a denied call again at once.
    assert s1["rejections"] == {"repeats": 2, "unanswered_denial": 2, "unresolved": 3}
    records = {(r["run"], r["attempt"]): r for r in _rows(out / "trajectories.jsonl")}
    failed = records[("fail", 0)]["stages"]["stage1"]["failed"]
    assert (
        "unresolved" in failed
        and "repeats" in failed
        and records[("fail", 0)]["measures"]["format_errors"] == 1
    )
    # The policy's denial as the agent recorded it: the second push (followed by finish) is answered.
    assert "unanswered_denial" in failed and records[("fail", 0)]["measures"]["denials_unanswered"] == 1
    noisy = records[("noisy", 0)]["stages"]
    assert noisy["stage1"]["kept"] and not noisy["stage2"]["kept"]
    assert {"format_error", "repeats", "review_not_accepted"} <= set(noisy["stage2"]["failed"])
    # Passed rules by the names a filters file gives them, failures by the names the report counts.
    assert {"finished", "resolved", "max_steps"} <= set(noisy["stage2"]["passed"])
    assert "unfinished" not in noisy["stage2"]["failed"] and "format_error" not in noisy["stage2"]["passed"]
    assert report["mistral_invalid"] == []
    md = (out / "report.md").read_text()
    assert "| stage2 | format_error | 1 |" in md and "plots/token_lengths.png" in md


def test_mistral_rows_mask_format_errors_and_use_nine_character_ids(
    built: tuple[Path, dict[str, Any]],
) -> None:
    from devloop.dataset.render import check_mistral

    out, _ = built
    rows = _all(out, "stage1")
    noisy = next(r for r in rows if r["run"] == "noisy" and r["render"] == "native")
    assistants = [m for m in noisy["messages"] if m["role"] == "assistant"]
    assert assistants[0]["weight"] == 0 and assistants[0]["content"] == "I will look at the code."
    assert all(m["weight"] == 1 for m in assistants[1:])
    ids = [c["id"] for m in assistants for c in m.get("tool_calls", [])]
    assert ids and all(len(i) == 9 and i.isalnum() for i in ids)
    assert check_mistral(noisy) is None
    bad = json.loads(json.dumps(noisy))
    next(m for m in bad["messages"] if m.get("tool_calls"))["tool_calls"][0]["id"] = "call_1"
    assert check_mistral(bad) is not None  # the validator is real: a 6-character id is refused
    xml = next(r for r in rows if r["run"] == "noisy" and r["render"] == "xml")
    assert "<function=str_replace_editor>" in xml["messages"][4]["content"] and "tools" not in xml
    assert "<parameter=" in xml["messages"][0]["content"]  # the xml tool description in the system prompt


def test_preferences_kto_and_refiner_triples(built: tuple[Path, dict[str, Any]]) -> None:
    out, report = built
    pairs = _rows(out / "preferences/pairs.jsonl")
    # samples: two resolved attempts (oracle, noisy) against the one distinct failing patch; review: 1.
    assert sorted(p["source"] for p in pairs) == ["review", "samples", "samples"]
    review = next(p for p in pairs if p["source"] == "review")
    assert review["chosen"][0]["content"].startswith("diff --git a/confetti/coerce.py")
    assert "confetti/notes.py" in review["rejected"][0]["content"]
    kto = _rows(out / "preferences/kto.jsonl")
    assert sorted(r["label"] for r in kto) == [False, False, True, True, True]  # the chat turn is ungraded
    (triple,) = _rows(out / "refiner/triples.jsonl")
    assert triple["source"] == "review" and triple["attempt"] == 0
    assert "tests/test_env.py::test_nested_boolean" in triple["failing_tests"]
    assert set(triple["failing_tests"]) <= set(triple["tests"]) and triple["refined_patch"] != triple["patch"]
    # The reviewer's re-grade of exactly the corrected patch: it resolves, and these tests decided it.
    assert triple["regrade"]["category"] == "resolved"
    assert "tests/test_env.py::test_nested_boolean" in triple["regrade"]["FAIL_TO_PASS"]["success"]


def test_secrets_are_scrubbed_and_observations_keep_their_truncation(
    runs: dict[str, Path], built: tuple[Path, dict[str, Any]]
) -> None:
    out, _ = built
    text = "\n".join(p.read_text() for p in sorted(out.rglob("*.jsonl")))
    assert SECRET not in text and "/home/alice" not in text and "[REDACTED] /home/user/project" in text
    traj = runs["fail"] / f"instances/{CONFETTI}/attempts/0/agent/trajectory.jsonl"
    steps = [json.loads(x) for x in traj.read_text().splitlines() if '"type": "step"' in x]
    seen = next(s for s in steps if s["calls"] and "seq" in json.dumps(s["calls"]))["observations"][0]["text"]
    assert len(seen) < len("\n".join(map(str, range(1, 20001))))  # the tool cut it
    kto = next(r for r in _rows(out / "preferences/kto.jsonl") if r["run"] == "fail")
    tools = [m["content"] for m in kto["completion"] if m["role"] == "tool"]
    assert seen in tools  # exactly what the model saw, cut where it was cut


def test_split_rerun_and_datasets_round_trip(
    runs: dict[str, Path], built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import datasets

    out, _ = built
    records = _rows(out / "trajectories.jsonl")
    for stage in ("stage1", "stage2"):
        splits: dict[str, set[str]] = {}
        for r in records:
            if r["stages"][stage]["kept"]:
                splits.setdefault(r["stages"][stage]["split"], set()).add(r["instance_id"].split("-")[0])
        assert not splits.get("train", set()) & splits.get("valid", set())
    again = tmp_path / "again"
    build(list(runs.values()), again, valid_fraction=0.5, fmt="mistral", renders=("native", "xml"))
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert any(f.suffix == ".png" for f in files) and any(f.suffix == ".arrow" for f in files)
    for f in files:
        assert (out / f).read_bytes() == (again / f).read_bytes(), f
    jsonl = _all(out, "stage1")
    hf = datasets.load_from_disk(str(out / "stage1" / "hf"))
    loaded = [row for split in ("train", "valid") if split in hf for row in hf[split]]
    files_ = [
        str(out / "stage1" / f"{s}.jsonl")
        for s in ("train", "valid")
        if (out / "stage1" / f"{s}.jsonl").stat().st_size
    ]
    raw = datasets.load_dataset("json", data_files=files_)["train"]  # how a user loads the JSONL
    assert len(loaded) == len(jsonl) == len(raw)
    for table in (loaded, list(raw)):
        for row in table:
            key = ("instance_id", "run", "attempt", "render")
            mine = next(r for r in jsonl if all(r[k] == row[k] for k in key))
            got = [c["function"]["arguments"] for m in row["messages"] for c in m.get("tool_calls") or []]
            want = [c["function"]["arguments"] for m in mine["messages"] for c in m.get("tool_calls", [])]
            assert got == want and all(isinstance(a, str) for a in got)  # strings, no null-filled struct


def test_openai_and_sharegpt_formats_and_user_rules(runs: dict[str, Path], tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[rules.short]\nmeasure = "steps"\nmax = 6\n[rules.no_seq]\npattern = "seq \\\\d"\n'
                     '[rules.tidy]\nall = ["no_seq", { max_tool_errors = 0 }]\n'
                     "[stage1]\nshort = true\nresolved_or_tests_green = false\ntidy = true\n")  # fmt: skip
    report = build([runs["noisy"], runs["oracle"], runs["fail"]], tmp_path / "o", filters=load_filters(rules))
    s1 = report["stages"]["stage1"]
    # noisy takes 9 steps, the failing ones 10 and they run `seq 1 ...`: only the oracle's (4 and 6) pass.
    assert sum(s1["kept"].values()) == 2 and s1["rejections"]["short"] == 3 and s1["rejections"]["tidy"] == 2
    openai = _all(tmp_path / "o", "stage1")
    assert all(r["tools"][0]["type"] == "function" for r in openai)
    proc = devloop(
        "dataset",
        "build",
        str(runs["oracle"]),
        str(runs["chat"]),
        "--out",
        str(tmp_path / "s"),
        "--format",
        "sharegpt",
    )
    assert proc.returncode == 0, proc.stderr
    (first, *_) = _all(tmp_path / "s", "stage1")
    assert [t["from"] for t in first["conversations"][:4]] == [
        "system",
        "human",
        "function_call",
        "observation",
    ]
    assert isinstance(json.loads(first["conversations"][2]["value"])["arguments"], str)
    shown = devloop("dataset", "inspect", str(tmp_path / "s"))
    assert (
        shown.returncode == 0
        and "[function_call]" in shown.stdout
        and "preferences/kto.jsonl: 2" in shown.stdout
    )
    bad = devloop("dataset", "build", str(runs["oracle"]), "--out", str(tmp_path / "x"), "--format", "alpaca")
    assert bad.returncode == 2 and "--format alpaca" in bad.stderr and "Traceback" not in bad.stderr


def test_decontamination_by_issue_and_near_duplicate_problem(runs: dict[str, Path], tmp_path: Path) -> None:
    task = json.loads((runs["oracle"] / "tasks.jsonl").read_text().splitlines()[0])
    words = task["problem_statement"].split()
    words[3] = "cannot"  # one word of the issue reworded, under another id
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(json.dumps({"instance_id": "other__x-9", "problem_statement": " ".join(words)}) + "\n")
    report = build([runs["oracle"]], tmp_path / "o", exclude=task_ids(evalset))
    assert report["stages"]["stage1"]["dropped"] == {"decontaminated": 1}
    (rec,) = [r for r in _rows(tmp_path / "o/trajectories.jsonl") if r["decontaminated"]]
    assert rec == {**rec, "instance_id": CONFETTI, "decontaminated": "near_duplicate"}
    unrelated = tmp_path / "u.jsonl"
    unrelated.write_text(
        json.dumps(
            {"instance_id": "a__b-1", "problem_statement": "Dates are parsed in the wrong zone when DST ends"}
        )
        + "\n"
    )
    assert (
        build([runs["oracle"]], tmp_path / "p", exclude=task_ids(unrelated))["stages"]["stage1"]["dropped"]
        == {}
    )
    by_issue = tmp_path / "i.jsonl"
    by_issue.write_text(json.dumps({"instance_id": "x", "repo": "org/lib", "issue_numbers": ["12"]}) + "\n")
    found = task_ids(by_issue)
    assert (
        found.why(
            {"instance_id": "y", "repo": "org/lib", "problem": "see https://github.com/org/lib/issues/12"}
        )
        == "issue"
    )
    assert (
        found.why(
            {"instance_id": "y", "repo": "org/lib", "problem": "see https://github.com/org/lib/issues/13"}
        )
        is None
    )


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 here", "sk-proj-AbCd"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "sk-ant-api03-abc"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abc"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefgh.payload", "eyJhbGciOiJIUzI1NiJ9abcdefgh"),
        ("export OPENAI_API_KEY='s3cr3tvalue123'", "s3cr3tvalue123"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghij"),
        ("xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("cat /home/alice/.ssh/id_rsa /Users/bob/x", "alice"),
    ],
)
def test_scrubber(text: str, secret: str) -> None:
    assert secret not in scrub(text)
    assert (
        scrub("ls /home/user/x; sha 0123456789abcdef; id call_1")
        == "ls /home/user/x; sha 0123456789abcdef; id call_1"
    )


def test_scrubbed_arguments_stay_json() -> None:
    from devloop.dataset.hygiene import scrub_value

    args = json.dumps({"command": 'export API_TOKEN=abcdefgh12345678\\"x'})
    out = scrub_value({"arguments": args})["arguments"]
    assert "abcdefgh12345678" not in out and json.loads(out)["command"].startswith("export API_TOKEN=")


def test_rows_offer_the_tools_the_run_offered(
    built: tuple[Path, dict[str, Any]], runs: dict[str, Path]
) -> None:
    traj = runs["noisy"] / f"instances/{CONFETTI}/attempts/0/agent/trajectory.jsonl"
    start = json.loads(traj.read_text().splitlines()[0])
    assert start["type"] == "start" and {t["function"]["name"] for t in start["tools"]} >= {
        "execute_bash",
        "finish",
    }
    native = [r for r in _all(built[0], "stage1") if r["render"] == "native"]
    assert native and all(r["tools"] == start["tools"] for r in native)
    assert all(
        "tools" not in r for r in _all(built[0], "stage1") if r["render"] == "xml"
    )  # described in the prompt


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `devloop run` with the pytest hook and --minimize: a scripted model fixes `add` and also writes
    a notes file the tests do not need, which the minimisation takes out again."""
    out = tmp_path_factory.mktemp("plain")
    repo = out / "calc"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    script = [_call("str_replace_editor", command="str_replace", path="calc.py", old_str="a - b", new_str="a + b"),
              _call("str_replace_editor", command="create", path="NOTES.md", file_text="scratch\n"),
              _call("finish", message="Fixed add.")]  # fmt: skip
    proc = devloop("run", "--repo", str(repo), "--issue", "add subtracts", "--model", _script(out / "s.jsonl", script),
                   "--hook", "pytest", "--minimize", "--output", str(out / "fix-add"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "fix-add"


def test_a_devloop_run_directory_green_and_minimised(plain_run: Path, run: Path, tmp_path: Path) -> None:
    proc = devloop("dataset", "build", str(plain_run), str(run), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    records = {r["instance_id"]: r for r in _rows(tmp_path / "o" / "trajectories.jsonl")}
    mine = records["run-fix-add"]["stages"]
    result = json.loads((plain_run / "result.json").read_text())
    # Shown if an assertion fails, the minimisation's record first (a long repr is cut at its end).
    minimized = result.get("minimize") or {}
    why = (minimized.get("note"), minimized.get("mode"), minimized, result.get("test_status"), mine, result)
    # Ungraded, so stage 1 keeps it on its visible tests going green; stage 2 wants the official grade.
    assert mine["stage1"]["kept"] and "resolved_or_tests_green" in mine["stage1"]["passed"], why
    assert not mine["stage2"]["kept"] and mine["stage2"]["dropped_as"] == "unresolved", why
    row = next(r for r in _all(tmp_path / "o", "stage1") if r["instance_id"] == "run-fix-add")
    assert row["messages"][1]["content"].startswith("<issue>\nadd subtracts")
    triples = _rows(tmp_path / "o" / "refiner" / "triples.jsonl")
    assert len(triples) == 1, why
    (triple,) = triples
    assert triple["source"] == "minimize" and triple["verified"] and triple["tests"] == ["tests/test_calc.py"]
    assert "NOTES.md" in triple["patch"] and "NOTES.md" not in triple["refined_patch"]
    assert "+    return a + b" in triple["refined_patch"]
    loose = devloop("dataset", "build", str(plain_run / "trajectory.jsonl"), "--out", str(tmp_path / "x"))
    assert loose.returncode == 2 and "not an eval run directory" in loose.stderr


def test_each_chat_turn_is_a_task_of_its_own(runs: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(runs["chat"], store, symlinks=True)
    (session,) = (store / "sessions").iterdir()
    meta = json.loads((session / "session.json").read_text())
    shutil.copytree(session / "turn-1", session / "turn-2", symlinks=True)  # a second turn, another prompt
    meta["turns"].append({**meta["turns"][0], "turn": 2, "prompt": "and now set x to 3"})
    (session / "session.json").write_text(json.dumps(meta))
    rules = tmp_path / "f.toml"
    rules.write_text(
        "[stage1]\nresolved_or_tests_green = false\n[stage2]\nresolved_or_tests_green = false\nresolved = false\n"
    )
    report = build([store], tmp_path / "o", filters=load_filters(rules))
    ids = sorted(r["instance_id"] for r in _all(tmp_path / "o", "stage2"))
    assert ids == [f"chat-{meta['id']}-1", f"chat-{meta['id']}-2"]  # per_instance = 1 keeps both turns
    assert report["stages"]["stage2"]["dropped"] == {}


def test_links_in_a_devloop_run_directory_are_not_followed(plain_run: Path, tmp_path: Path) -> None:
    from devloop.dataset.collect import kind, sources

    copy = tmp_path / "fix-add"
    shutil.copytree(plain_run, copy, symlinks=True)
    secret = tmp_path / "host.txt"
    secret.write_text("diff --git a/HOST SECRET b/HOST SECRET\n")
    for name in ("patch.diff", "events.jsonl"):
        (copy / name).unlink()
        (copy / name).symlink_to(secret)
    (attempt,) = sources(copy)
    assert attempt["patch"] == "" and attempt["tests"] == [] and attempt["events"]
    (copy / "trajectory.jsonl").unlink()
    (copy / "trajectory.jsonl").symlink_to(plain_run / "trajectory.jsonl")
    assert kind(copy) is None and sources(copy) == []  # a linked trajectory: not a run directory at all
