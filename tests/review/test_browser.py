"""The review app in Debian's Chromium, driven by Playwright: keys, decisions, rendering of hostile text."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from devloop.review.app import create_app
from devloop.review.decisions import REVIEWS
from devloop.review.items import load_runs
from devloop.runtime.bwrap_argv import probe_bwrap

from .conftest import HOSTILE_NAME, patch_for

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")
ARTIFACTS = Path(os.environ.get("DEVLOOP_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])  # fmt: skip
        yield b
        b.close()


def serve(run_dir: Path, **kwargs: object) -> Iterator[str]:
    app = create_app(load_runs([run_dir]), reviewer="cy", token="tok", **kwargs)  # type: ignore[arg-type]
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def served(run_dir: Path) -> Iterator[str]:
    yield from serve(run_dir)


def csp_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Console errors a page logs; a Content-Security-Policy refusal would show here."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_keys_accept_an_item_and_hostile_patches_stay_text(browser, served: str, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = csp_errors(page)
    page.goto(f"{served}/?token=tok")
    page.keyboard.press("j")  # to the second item (a__a-1, unresolved)
    assert page.locator("tr.current").get_attribute("data-instance") == "a__a-1"
    page.keyboard.press("a")
    page.locator("tr.current .decided").get_by_text("accepted by cy").wait_for()
    (decision,) = [json.loads(line) for line in (run_dir / REVIEWS).read_text().splitlines()]
    assert (decision["instance_id"], decision["action"]) == ("a__a-1", "accept")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.locator(".d2h-file-wrapper").first.wait_for()  # diff2html drew the model patch
    assert page.evaluate("window.pwned") is None  # the patch's and issue's markup never ran
    assert "<script>window.pwned=1</script>" in page.locator(".d2h-file-wrapper").first.inner_text()
    assert HOSTILE_NAME in page.locator(".d2h-file-name").first.inner_text()  # the file name, as text too
    page.keyboard.press("e")  # the merge view, starting from the model patch
    page.locator(".cm-mergeView").wait_for()
    assert "window.pwned=1" in page.locator(".cm-mergeView .cm-content").first.inner_text()
    page.locator(".cm-mergeView .cm-content").nth(1).click()
    page.keyboard.press("Control+End")
    page.keyboard.type("+added line")
    assert page.locator("#corrected").input_value().endswith("+added line")
    page.locator("#runtests").click()
    page.locator("#regrade").get_by_text("re-graded:").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)
    page.locator("h1").click()  # out of the editor, so keys act on the page again
    page.keyboard.press("r")
    page.locator("#decision").get_by_text("rejected by cy").wait_for()
    page.reload()
    assert "rejected by cy" in page.locator("#decision").inner_text()
    page.keyboard.press("j")  # on an item's page j/k go to the next and previous item of the queue
    page.wait_for_url("**/item/run1/a__a-1/0?token=tok")
    assert "accepted by cy" in page.locator("#decision").inner_text()
    page.keyboard.press("k")
    page.wait_for_url("**/item/run1/b__b-2/0?token=tok")
    assert errors == [] and page.evaluate("window.pwned") is None
    page.close()


# The builtin suite's confetti-1, with a model patch that misses two of the boolean spellings (so two
# FAIL_TO_PASS tests fail), and csvlite-1 with no patch at all.
BROKEN = ('"yes", "on"})', '"yes"})'), ('"no", "off"})', '"no"})')


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A run of the builtin suite made by `devloop eval` itself: (run dir, environment cache, gold patch)."""
    from devloop.suite.builtin_tasks import task_dir

    out = tmp_path_factory.mktemp("review-run")
    gold = (task_dir("confetti") / "gold.patch").read_text()
    broken = gold
    for old, new in BROKEN:
        assert old in broken
        broken = broken.replace(old, new)
    preds = out / "preds.jsonl"
    preds.write_text("".join(json.dumps({"instance_id": i, "model_name_or_path": "m", "model_patch": p}) + "\n"
                             for i, p in (("devloop__confetti-1", broken), ("devloop__csvlite-1", ""))))  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "devloop", "eval", "--suite", "builtin", "--predictions", str(preds),
                           "--instances", "devloop__confetti-1,devloop__csvlite-1", "--output", str(out),
                           "--run-id", "broken", "--cache-dir", str(out / "cache")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "broken", out / "cache", gold


@pytest.mark.skipif(probe_bwrap() is not None, reason=f"re-grading needs bubblewrap: {probe_bwrap()}")
def test_a_correction_is_regraded_in_the_sandbox_before_it_is_saved(
    browser, real_run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    run_dir, cache, gold = real_run
    unit = json.loads((run_dir / "instances/devloop__confetti-1/attempts/0/unit.json").read_text())
    assert unit["verdict"]["category"] == "unresolved"  # the eval really failed the model's patch
    for url in serve(run_dir, cache_dir=cache):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = csp_errors(page)
        page.goto(f"{url}/?token=tok")
        assert page.locator("tr.item").count() == 2
        page.locator("tr.item", has_text="devloop__csvlite-1").locator("a").click()
        page.wait_for_url("**/item/**")
        page.locator("#accept").click()  # htmx may not have loaded yet: the form's own post lands the same
        page.locator("#decision").get_by_text("accepted by cy").wait_for()
        page.goto(f"{url}/item/broken/devloop__confetti-1/0?token=tok")
        assert "test_booleans[On-True]" in page.locator(".failing").inner_text()
        # each failure's error line from the grade's test log, open above the collapsed log itself
        failures = page.locator("section .failures").first.inner_text()
        assert "expected a boolean (true/false, yes/no, on/off, 1/0), got 'off'" in failures
        assert "got 'On'" in failures and not page.locator("details.log").first.evaluate("d => d.open")
        page.keyboard.press("e")
        editor = page.locator(".cm-mergeView .cm-content").nth(1)
        editor.click()
        page.keyboard.press("Control+a")
        stale = gold.replace("confetti/coerce.py", "confetti/moved.py")  # a file the base commit lacks
        page.keyboard.insert_text(stale)  # first a correction whose context is not in the base commit
        page.locator("#runtests").click()
        page.locator("#regrade .regrade").wait_for(timeout=120_000)
        assert "re-graded: patch_apply_failed" in page.locator("#regrade").inner_text()
        assert "does not apply to the base commit" in page.locator("#regrade .problem").inner_text()
        assert page.locator("#corrected").input_value() == stale  # nothing lost: still in the editor
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(gold)  # the reviewer puts the gold fix in the editor
        assert page.locator("#corrected").input_value().strip() == gold.strip()
        page.locator("#runtests").click()
        result = page.locator("#regrade .regrade-resolved")
        result.wait_for(timeout=120_000)
        assert "re-graded: resolved" in result.inner_text(), result.inner_text()
        task = json.loads((run_dir / "tasks.jsonl").read_text().splitlines()[0])
        assert f"FAIL_TO_PASS: {len(task['FAIL_TO_PASS'])} passed, 0 failed" in result.inner_text()
        assert "passed" in result.locator("details.log pre").text_content()  # the re-grade's own test log
        # the correction's diff is drawn beside the model's: the two spellings the model missed are there
        assert '"on"' in page.locator("#correction-diff").inner_text()
        assert '"on"' not in page.locator("#model-diff").inner_text()
        page.locator("input[name=reason]").fill("on/off were missing")
        page.locator("#correct").click()
        page.locator("#decision").get_by_text("corrected by cy (re-graded: resolved)").wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-regraded.png"), full_page=True)
        page.goto(f"{url}/?token=tok")  # both decisions, read back from reviews.jsonl
        decided = {r.get_attribute("data-instance"): r.locator(".decided").inner_text()
                   for r in page.locator("tr.item").all()}  # fmt: skip
        assert decided == {"devloop__confetti-1": "corrected by cy (re-graded: resolved): on/off were missing",
                           "devloop__csvlite-1": "accepted by cy"}  # fmt: skip
        assert errors == []
        page.close()
    for url in serve(run_dir, cache_dir=cache):  # a new session over the run: both decisions are back
        page = browser.new_page()
        page.goto(f"{url}/item/broken/devloop__confetti-1/0?token=tok")
        assert (
            page.locator("#decision").inner_text()
            == "corrected by cy (re-graded: resolved): on/off were missing"
        )
        page.goto(f"{url}/item/broken/devloop__csvlite-1/0?token=tok")
        assert page.locator("#decision").inner_text() == "accepted by cy"
        page.close()
    lines = [json.loads(line) for line in (run_dir / REVIEWS).read_text().splitlines()]
    corrected = next(d for d in lines if d["action"] == "correct")
    assert corrected["corrected_patch"].strip() == gold.strip()
    assert corrected["regrade"]["category"] == "resolved" and corrected["regrade"]["sandbox"] == "bwrap"
    assert corrected["regrade"]["FAIL_TO_PASS"]["failure"] == []
    proc = subprocess.run([sys.executable, "-m", "devloop", "review", str(run_dir), "--export-triples",
                           str(tmp_path / "t.jsonl")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (triple,) = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert triple["regrade"]["category"] == "resolved" and '"on"' not in triple["failing_patch"]


def test_filters_keys_and_refusals_are_shown_in_the_page_and_drafts_survive_a_reload(
    browser, served: str
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = csp_errors(page)
    page.goto(f"{served}/?token=tok")
    assert page.locator("tr.item").count() == 3
    page.locator("#filter-repo").select_option("bee/bee")  # applies on change
    page.wait_for_url("**repo=bee%2Fbee**")
    assert [r.get_attribute("data-instance") for r in page.locator("tr.item").all()] == ["b__b-2"]
    page.locator("#filter-repo").select_option("")
    expect(page.locator("tr.item")).to_have_count(3)  # (wait_for_function would eval, which the CSP forbids)
    page.locator("#filter-category").select_option("patch_apply_failed")
    expect(page.locator("tr.item")).to_have_count(1)
    page.locator("body").click()  # leave the menu: keys act on the queue again
    page.keyboard.press("r")
    page.locator("tr.current .decided").get_by_text("rejected by cy").wait_for()
    page.goto(f"{served}/?token=tok")
    page.keyboard.press("j")
    page.keyboard.press("e")  # from the queue: the item opens with its correction editor started
    page.wait_for_url("**/item/run1/a__a-1/0?token=tok#edit")
    editor = page.locator(".cm-mergeView .cm-content").nth(1)
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.locator("#correct").click()  # an empty correction is refused, and said so in the page
    page.locator("#form-problem").get_by_text("not saved: a correction needs the corrected patch").wait_for()
    editor.click()
    page.keyboard.insert_text(patch_for("a.py", "draft kept"))
    page.wait_for_timeout(300)  # the diff is redrawn after a pause in typing
    page.reload()  # the unsaved correction comes back from this browser
    assert not page.locator("#draft-note").is_hidden()
    assert "draft kept" in page.locator("#correction-diff").inner_text()
    assert "draft kept" not in page.locator("#model-diff").inner_text()
    page.keyboard.press("e")
    assert "draft kept" in page.locator(".cm-mergeView .cm-content").nth(1).inner_text()
    page.locator("#correct").click()
    page.locator("#decision").get_by_text("corrected by cy (not re-graded)").wait_for()
    page.reload()
    assert page.locator("#draft-note").is_hidden()  # saved: the draft is gone
    assert [e for e in errors if "400" not in e] == [], errors  # only the refusal above
    page.close()


def test_a_server_that_went_away_is_said_in_the_page_and_the_correction_kept(browser, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    server = serve(run_dir)
    url = next(server)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/item/run1/a__a-1/0?token=tok")
    page.keyboard.press("e")
    editor = page.locator(".cm-mergeView .cm-content").nth(1)
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("+kept")
    next(server, None)  # the server stops
    page.locator("#correct").click()
    page.locator("#form-problem").get_by_text("the review server did not answer").wait_for()
    assert page.locator("#corrected").input_value().endswith("+kept")
    assert page.evaluate("localStorage.getItem('devloop-review-draft:run1/a__a-1/0')").endswith("+kept")
    assert not (run_dir / REVIEWS).exists()
    page.close()
