"""The review app through Starlette's ASGI test client, on run directories written by the eval store."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from devloop.review.app import create_app
from devloop.review.decisions import REVIEWS, append_decision, patch_sha256, read_reviews
from devloop.review.export import export_predictions, export_triples
from devloop.review.items import load_runs, load_runs_lenient
from devloop.review.regrade import regrade

from .conftest import HOSTILE, patch_for


class PageClient(TestClient):
    """Its page reads carry the session's token in the URL, as every link of the printed URL's page does
    (writes carry it, or not, in the form, as each test says)."""

    def get(self, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().get(url + ("&" if "?" in url else "?") + "token=tok", **kwargs)


def client(run_dir: Path) -> TestClient:
    return PageClient(create_app(load_runs([run_dir]), reviewer="ann", token="tok"))


def test_queue_orders_needs_review_first_and_leaves_resolved_out(run_dir: Path) -> None:
    items = client(run_dir).get("/api/items").json()
    assert [(i["instance_id"], i["kind"]) for i in items] == [
        ("b__b-2", "needs_review"), ("a__a-1", "unresolved"), ("d__d-4", "unverified")]  # fmt: skip


def test_filters_by_repo_category_and_attempt(run_dir: Path) -> None:
    c = client(run_dir)
    assert [i["instance_id"] for i in c.get("/api/items?repo=bee/bee").json()] == ["b__b-2"]
    assert [i["instance_id"] for i in c.get("/api/items?category=patch_apply_failed").json()] == ["d__d-4"]
    assert c.get("/api/items?attempt=1").json() == []
    assert len(c.get("/api/items?run=run1").json()) == 3


def test_a_write_without_the_token_is_refused_and_writes_nothing(run_dir: Path) -> None:
    c = client(run_dir)
    form = {"run": "run1", "instance_id": "a__a-1", "attempt": "0", "action": "accept"}
    assert c.post("/api/decision", data=form).status_code == 403
    assert c.post("/api/decision", data={**form, "token": "wrong"}).status_code == 403
    assert not (run_dir / REVIEWS).exists()


def test_a_form_posted_by_the_browser_itself_goes_back_to_the_item(run_dir: Path) -> None:
    """Before htmx loads (or with scripts off) the form posts natively: the decision is kept, the item shown."""
    c = client(run_dir)
    form = {"token": "tok", "run": "run1", "instance_id": "a__a-1", "attempt": "0", "action": "reject"}
    r = c.post("/api/decision", data=form, headers={"Accept": "text/html"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/item/run1/a__a-1/0?token=tok")
    assert "rejected by ann" in c.get(r.headers["location"]).text
    assert [json.loads(line)["action"] for line in (run_dir / REVIEWS).read_text().splitlines()] == ["reject"]


def test_decisions_are_recorded_with_hash_reviewer_and_shown_again(run_dir: Path) -> None:
    c = client(run_dir)
    base = {"token": "tok", "run": "run1", "attempt": "0"}
    r = c.post("/api/decision", data={**base, "instance_id": "a__a-1", "action": "accept", "reason": "fine"})
    assert r.status_code == 200
    patch = "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-old\n+fixed\n"
    r = c.post(
        "/api/decision", data={**base, "instance_id": "b__b-2", "action": "correct", "corrected_patch": patch}
    )
    assert r.json()["corrected_patch"] == patch
    assert (
        c.post("/api/decision", data={**base, "instance_id": "d__d-4", "action": "correct"}).status_code
        == 400
    )
    assert c.post("/api/decision", data={**base, "instance_id": "zz", "action": "accept"}).status_code == 404
    lines = [json.loads(line) for line in (run_dir / REVIEWS).read_text().splitlines()]
    assert [(d["instance_id"], d["action"], d["reviewer"]) for d in lines] == [
        ("a__a-1", "accept", "ann"), ("b__b-2", "correct", "ann")]  # fmt: skip
    run = load_runs([run_dir])["run1"]
    assert lines[0]["model_patch_sha256"] == patch_sha256(run.units["a__a-1"][0].patch)
    assert lines[0]["reason"] == "fine" and isinstance(lines[0]["time"], float)
    assert {i["instance_id"]: i["decision"] for i in c.get("/api/items").json()} == {
        "a__a-1": "accept", "b__b-2": "correct", "d__d-4": None}  # fmt: skip
    assert "accepted by ann" in c.get("/?token=tok").text


def test_patch_issue_and_trajectory_text_are_escaped_in_the_item_page(run_dir: Path) -> None:
    page = client(run_dir).get("/item/run1/b__b-2/0").text
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert "issue text &lt;script&gt;" in page
    assert "t::test_a" in page and "FAILED" in page  # the failing test and its status
    assert "\\u003cscript\\u003e" in page  # the patch as JSON data, for diff2html to render
    assert client(run_dir).get("/item/run1/nope/0").status_code == 404


def test_a_corrupt_reviews_line_is_named_on_the_page_and_the_others_kept(run_dir: Path) -> None:
    append_decision(run_dir, {"instance_id": "a__a-1", "attempt": 0, "action": "reject"})
    with (run_dir / REVIEWS).open("a") as fh:
        fh.write("{not json\n")
    append_decision(run_dir, {"instance_id": "d__d-4", "attempt": 0, "action": "accept"})
    reviews = read_reviews(run_dir)
    assert set(reviews.latest) == {("a__a-1", 0), ("d__d-4", 0)}
    assert reviews.problems == [f"{run_dir / REVIEWS}:2: not a review decision (JSONDecodeError), skipped"]
    assert f"{REVIEWS}:2: not a review decision" in client(run_dir).get("/").text


def _append_many(run_dir: str, who: str) -> None:
    for n in range(200):
        append_decision(Path(run_dir), {"instance_id": f"{who}{n}", "attempt": 0, "action": "accept"})


def test_two_writers_on_one_run_lose_no_line(run_dir: Path) -> None:
    procs = [multiprocessing.get_context("fork").Process(target=_append_many, args=(str(run_dir), w))
             for w in ("x", "y")]  # fmt: skip
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    reviews = read_reviews(run_dir)
    assert reviews.problems == []
    assert len(reviews.latest) == 400


def test_exports_predictions_and_triples(run_dir: Path, tmp_path: Path) -> None:
    c = client(run_dir)
    base = {"token": "tok", "run": "run1", "attempt": "0"}
    c.post("/api/decision", data={**base, "instance_id": "a__a-1", "action": "accept"})
    c.post(
        "/api/decision", data={**base, "instance_id": "b__b-2", "action": "correct", "corrected_patch": "FIX"}
    )
    c.post("/api/decision", data={**base, "instance_id": "d__d-4", "action": "reject"})
    runs = load_runs([run_dir])
    assert export_predictions(runs, tmp_path / "p.jsonl") == 2
    preds = {
        p["instance_id"]: p["model_patch"]
        for p in map(json.loads, (tmp_path / "p.jsonl").read_text().splitlines())
    }
    assert preds == {"a__a-1": runs["run1"].units["a__a-1"][0].patch, "b__b-2": "FIX"}
    assert export_triples(runs, tmp_path / "t.jsonl") == 1
    (triple,) = map(json.loads, (tmp_path / "t.jsonl").read_text().splitlines())
    assert triple["failing_patch"].endswith(HOSTILE + "\n") and triple["corrected_patch"] == "FIX"
    assert triple["passing_tests"] == ["t::test_a", "t::test_b"]


def test_a_directory_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a devloop run directory"):
        load_runs([tmp_path])


def test_run_tests_needs_the_token_and_a_task_it_cannot_grade_is_one_clear_line(run_dir: Path) -> None:
    c = client(run_dir)
    form = {"run": "run1", "instance_id": "a__a-1", "attempt": "0", "corrected_patch": "diff"}
    assert c.post("/api/regrade", data=form).status_code == 403
    page = c.post("/api/regrade", data={**form, "token": "tok"}).text
    assert "re-graded: env_error" in page and "environment" in page
    r = c.post("/api/regrade", data={**form, "token": "tok", "instance_id": "zz"})
    assert r.status_code == 404 and "no such item" in r.json()["error"]
    (run_dir / "tasks.jsonl").write_text("")  # the run lost its task records
    verdict = regrade(load_runs([run_dir])["run1"], "a__a-1", "diff")
    assert verdict.category == "error" and "no task record for a__a-1" in verdict.message


def test_a_saved_correction_carries_the_regrade_of_exactly_its_text(run_dir: Path, tmp_path: Path) -> None:
    c = client(run_dir)
    base = {"token": "tok", "run": "run1", "attempt": "0"}
    graded = patch_for("b.py", "fixed")
    c.post(
        "/api/regrade",
        data={**base, "instance_id": "b__b-2", "corrected_patch": graded.replace("\n", "\r\n")},
    )
    saved = c.post("/api/decision", data={**base, "instance_id": "b__b-2", "action": "correct",
                                          "corrected_patch": graded}).json()  # fmt: skip
    assert saved["regrade"]["patch_sha256"] == patch_sha256(graded)  # CRLF from a form is the same patch
    assert saved["regrade"]["category"] == "env_error" and "FAIL_TO_PASS" in saved["regrade"]
    other = c.post("/api/decision", data={**base, "instance_id": "a__a-1", "action": "correct",
                                          "corrected_patch": graded}).json()  # fmt: skip
    assert other["regrade"] is None  # graded for another item: not this one's verdict
    edited = c.post("/api/decision", data={**base, "instance_id": "b__b-2", "action": "correct",
                                           "corrected_patch": graded + "\n"}).json()  # fmt: skip
    assert edited["regrade"] is None  # edited after the tests ran
    assert "corrected by ann (not re-graded)" in c.get("/").text
    c.post(
        "/api/decision",
        data={**base, "instance_id": "b__b-2", "action": "correct", "corrected_patch": graded},
    )
    assert export_triples(load_runs([run_dir]), tmp_path / "t.jsonl") == 2
    triples = {t["instance_id"]: t for t in map(json.loads, (tmp_path / "t.jsonl").read_text().splitlines())}
    assert triples["b__b-2"]["regrade"]["category"] == "env_error" and triples["a__a-1"]["regrade"] is None


def test_pages_forbid_inline_scripts_and_a_foreign_host_is_refused(run_dir: Path) -> None:
    c = client(run_dir)
    csp = c.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert c.get("/item/run1/b__b-2/0").headers["referrer-policy"] == "no-referrer"
    app = create_app(load_runs([run_dir]), token="tok", allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1").get("/?token=tok").status_code == 200
    assert TestClient(app, base_url="http://rebound.example").get("/?token=tok").status_code == 400


def test_a_line_cut_short_does_not_swallow_the_next_decision(run_dir: Path) -> None:
    append_decision(run_dir, {"instance_id": "a__a-1", "attempt": 0, "action": "reject"})
    with (run_dir / REVIEWS).open("a") as fh:
        fh.write('{"instance_id": "d__d-4", "att')  # a writer killed mid-line
    append_decision(run_dir, {"instance_id": "b__b-2", "attempt": 0, "action": "accept"})
    reviews = read_reviews(run_dir)
    assert set(reviews.latest) == {("a__a-1", 0), ("b__b-2", 0)}
    assert reviews.problems == [f"{run_dir / REVIEWS}:2: not a review decision (JSONDecodeError), skipped"]


def test_a_path_that_is_not_a_run_is_named_on_the_page_beside_the_runs_that_load(
    run_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes").mkdir()
    runs, problems = load_runs_lenient([run_dir, tmp_path / "notes"])
    assert list(runs) == ["run1"] and problems == [
        f"{tmp_path / 'notes'}: not a devloop run directory (no report.json or run.json)"
    ]
    page = TestClient(create_app(runs, token="tok", problems=problems)).get("/?token=tok").text
    assert "notes: not a devloop run directory" in page and "b__b-2" in page


def test_without_bubblewrap_nothing_is_regraded_and_the_page_says_why(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devloop.review.regrade as mod

    def no_grading(*_a: object, **_k: object) -> None:
        raise AssertionError("graded without a sandbox")

    monkeypatch.setattr(mod, "probe_bwrap", lambda: "the `bwrap` binary is not on PATH")
    monkeypatch.setattr(mod, "grade", no_grading)
    form = {"token": "tok", "run": "run1", "instance_id": "a__a-1", "attempt": "0", "corrected_patch": "diff"}
    page = client(run_dir).post("/api/regrade", data=form).text
    assert "re-graded: error" in page and "runs only in bubblewrap, which does not work here" in page


def test_a_reviews_file_that_is_a_link_or_a_fifo_is_named_and_never_followed(
    run_dir: Path, tmp_path: Path
) -> None:
    """A link planted at reviews.jsonl must not lead a write (or a read) to another file; a FIFO never blocks."""
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me\n")
    (run_dir / REVIEWS).symlink_to(elsewhere)
    c = client(run_dir)
    assert (
        f"{run_dir / REVIEWS}: is a symbolic link; decisions are neither read nor written there"
        in c.get("/").text
    )
    form = {"token": "tok", "run": "run1", "instance_id": "a__a-1", "attempt": "0", "action": "accept"}
    r = c.post("/api/decision", data=form)
    assert r.status_code == 409 and "is a symbolic link" in r.json()["error"]
    assert elsewhere.read_text() == "keep me\n"
    (run_dir / REVIEWS).unlink()
    os.mkfifo(run_dir / REVIEWS)
    assert "reviews.jsonl: not a regular file" in c.get("/item/run1/a__a-1/0").text
    assert c.post("/api/decision", data=form).status_code == 409


def test_links_planted_in_the_run_are_not_followed_to_show_another_file(
    run_dir: Path, tmp_path: Path
) -> None:
    """A trajectory or result.json that is a link (or under a linked directory) is never read through it."""
    secret = tmp_path / "secret"
    (secret / "agent").mkdir(parents=True)
    (secret / "agent" / "trajectory.jsonl").write_text(
        json.dumps({"type": "step", "step": 1, "action": "SECRET"})
    )
    (secret / "agent" / "result.json").write_text(json.dumps({"needs_review": True}))
    a_agent = run_dir / "instances/a__a-1/attempts/0/agent"
    for name in ("trajectory.jsonl", "result.json"):
        (a_agent / name).unlink()
        (a_agent / name).symlink_to(secret / "agent" / name)
    d_attempt = run_dir / "instances/d__d-4/attempts/0"
    shutil.rmtree(d_attempt / "agent")
    (d_attempt / "agent").symlink_to(secret / "agent", target_is_directory=True)
    c = client(run_dir)
    # the linked result.json's needs_review is not believed: the queue order is the unlinked one
    assert [(i["instance_id"], i["kind"]) for i in c.get("/api/items").json()] == [
        ("b__b-2", "needs_review"), ("a__a-1", "unresolved"), ("d__d-4", "unverified")]  # fmt: skip
    for iid in ("a__a-1", "d__d-4"):
        page = c.get(f"/item/run1/{iid}/0").text
        assert "SECRET" not in page and "Trajectory (0 steps)" in page
        assert (
            f"{run_dir}/instances/{iid}/attempts/0/agent" in page
            and "symbolic link, which is not followed here; not shown" in page
        )
    assert "Trajectory (1 step)" in c.get("/item/run1/b__b-2/0").text  # an ordinary one still reads


def test_a_decision_made_on_another_patch_is_marked_and_not_exported(run_dir: Path, tmp_path: Path) -> None:
    """The run was redone after the review: the decision is kept and shown as stale, never exported."""
    append_decision(run_dir, {"instance_id": "a__a-1", "attempt": 0, "action": "accept",
                              "model_patch_sha256": patch_sha256("the patch of an earlier run")})  # fmt: skip
    append_decision(run_dir, {"instance_id": "b__b-2", "attempt": 0, "action": "correct", "corrected_patch": "FIX",
                              "model_patch_sha256": patch_sha256("another")})  # fmt: skip
    c = client(run_dir)
    assert c.get("/").text.count("(on another patch)") == 2
    assert "made on another patch than this attempt's: not exported" in c.get("/item/run1/a__a-1/0").text
    runs = load_runs([run_dir])
    assert (
        export_predictions(runs, tmp_path / "p.jsonl") == 0
        and export_triples(runs, tmp_path / "t.jsonl") == 0
    )
    assert (tmp_path / "p.jsonl").read_text() == ""


def test_pages_need_the_token_too_and_a_refusal_does_not_show_it(run_dir: Path) -> None:
    """Another user of the machine who finds the port reads no patch, issue or trajectory without the URL."""
    bare = TestClient(create_app(load_runs([run_dir]), reviewer="ann", token="tok"))
    for path in ("/", "/api/items", "/item/run1/b__b-2/0", "/?token=wrong"):
        r = bare.get(path)
        assert r.status_code == 403 and "needs the session&#39;s token" in r.text, path
        assert "b__b-2" not in r.text and "tok" not in r.text.replace("token", "")
    assert bare.get("/api/items", headers={"X-Review-Token": "tok"}).status_code == 200
    assert bare.get("/static/vendor/htmx.min.js").status_code == 200  # the vendored files are no secret


def test_the_item_page_shows_each_failure_of_the_test_log_escaped(run_dir: Path, tmp_path: Path) -> None:
    c = client(run_dir)
    page = c.get("/item/run1/b__b-2/0").text
    assert "<summary>test_a</summary><pre>E       AssertionError: assert 1 == 2" in page
    assert "<script>window.pwned" not in page and "parse(&#39;&lt;script&gt;window.pwned=1" in page
    assert "noise that is not an error line" in page.split('class="log"')[1]  # only in the log's tail
    assert "test log (" not in c.get("/item/run1/a__a-1/0").text  # the grade kept no log for it
    log = run_dir / "instances/b__b-2/attempts/0/test_output.txt"
    log.unlink()
    (tmp_path / "other.txt").write_text("E   SECRET\n")
    log.symlink_to(tmp_path / "other.txt")
    page = c.get("/item/run1/b__b-2/0").text
    assert (
        "SECRET" not in page and "test_output.txt: it is a symbolic link, which is not followed here" in page
    )


def test_two_reviewers_servers_on_one_run_see_each_others_decisions(run_dir: Path) -> None:
    ann, bo = (
        PageClient(create_app(load_runs([run_dir]), reviewer=who, token="tok")) for who in ("ann", "bo")
    )
    base = {"token": "tok", "run": "run1", "attempt": "0"}
    assert (
        ann.post("/api/decision", data={**base, "instance_id": "a__a-1", "action": "accept"}).status_code
        == 200
    )
    assert (
        bo.post("/api/decision", data={**base, "instance_id": "d__d-4", "action": "reject"}).status_code
        == 200
    )
    for c in (ann, bo):  # each server reads the file again: both decisions, whoever made them
        assert {i["instance_id"]: i["decision"] for i in c.get("/api/items").json()} == {
            "b__b-2": None, "a__a-1": "accept", "d__d-4": "reject"}  # fmt: skip
    assert "rejected by bo" in ann.get("/item/run1/d__d-4/0").text
    assert "accepted by ann" in bo.get("/item/run1/a__a-1/0").text
