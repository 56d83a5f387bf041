"""The review app in Debian's Chromium, driven by Playwright: keys, decisions, rendering of hostile text."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from devloop.review.app import create_app
from devloop.review.decisions import REVIEWS
from devloop.review.items import load_runs

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


@pytest.fixture
def served(run_dir: Path) -> Iterator[str]:
    app = create_app(load_runs([run_dir]), reviewer="cy", token="tok")
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_keys_accept_an_item_and_hostile_patches_stay_text(browser, served: str, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
    page.close()
