"""`devloop review` in a browser on a run of 300 instances: time to first paint and the page's weight.

A synthetic run directory of 300 graded attempts is written through the eval store (patches of ~40 lines,
issue texts of ~1 KB, pytest logs of ~100 lines, trajectories of 20 steps; 30 resolved, so 270 are
queued). Debian's Chromium, driven by Playwright, loads the queue page and one item's page from

- devloop: the review app (the queue is built once at start; every request reads reviews.jsonl again
  and renders the page), and
- the floor: the very same HTML, captured once from the app, served as fixed bytes with the same
  static files by a bare Starlette app, gzipped alike (what the page costs with no server work),

in alternating rounds, each in a fresh browser context (nothing cached). First contentful paint comes
from the Paint Timing API; the weight is the bytes transferred (the navigation's and every resource's
`transferSize`: bodies as sent plus headers). Medians, the ratio devloop/floor and its spread over the
rounds are printed; then the correction editor's weight and the time from `e` to the merge view shown
(devloop only: it is the same static file either way).

    python bench/review_paint.py [--rounds 5] [--units 300]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from devloop.eval.engine import write_tasks
from devloop.eval.records import UnitRecord
from devloop.eval.store import RunStore
from devloop.eval.verdict import Category, Resolution, TestsStatus, Verdict
from devloop.review.app import create_app
from devloop.review.items import load_runs
from devloop.tasks.model import Task

CHROMIUM = "/usr/bin/chromium"
TOKEN = "bench"


def synthetic_patch(n: int) -> str:
    body = "".join(
        f"-    value_{k} = compute({k})\n+    value_{k} = compute({k}, strict=True)\n" for k in range(12)
    )
    context = "".join(f"     line_{k} = {k}\n" for k in range(3))
    return (f"diff --git a/pkg/mod_{n}.py b/pkg/mod_{n}.py\n--- a/pkg/mod_{n}.py\n+++ b/pkg/mod_{n}.py\n"
            f"@@ -10,18 +10,18 @@ def handler_{n}():\n{context}{body}{context}")  # fmt: skip


def synthetic_log(n: int, ok: bool) -> str:
    """A pytest report of ~110 lines: one failing test's traceback, five passing tests, the summaries."""
    frames = "".join(
        f"pkg/mod_{n}.py:{10 + k}: in handler_{n}\n    value_{k} = compute({k})\n" for k in range(40)
    )
    failure = ("" if ok else "=================================== FAILURES ===================================\n"
               f"________________________________ test_strict_{n} ________________________________\n\n"
               f"    def test_strict_{n}():\n>       assert handler_{n}(strict=True) == 3\n{frames}"
               "E       AssertionError: assert 2 == 3\nE        +  where 2 = handler(strict=True)\n\n"
               "tests/test_mod.py:12: AssertionError\n")  # fmt: skip
    passes = "".join(f"PASSED tests/test_mod.py::test_ok_{k}\n" for k in range(5))
    return ("============================= test session starts ==============================\n"
            f"collected 6 items\n\ntests/test_mod.py {'.' if ok else 'F'}.....\n\n{failure}"
            f"=========================== short test summary info ============================\n{passes}"
            + ("" if ok else f"FAILED tests/test_mod.py::test_strict_{n} - AssertionError: assert 2 == 3\n"))  # fmt: skip


def make_run(root: Path, units: int) -> Path:
    store = RunStore(root, "bench")
    store.root.mkdir(parents=True)
    ids = [f"org__repo{n % 12}-{n}" for n in range(units)]
    tasks = [Task(instance_id=i, repo=f"org/repo{n % 12}", base_commit="0" * 40,
                  problem_statement=("The handler returns the wrong value when strict mode is on. " * 16),
                  FAIL_TO_PASS=[f"tests/test_mod.py::test_strict_{n}"],
                  PASS_TO_PASS=[f"tests/test_mod.py::test_ok_{k}" for k in range(5)]) for n, i in enumerate(ids)]  # fmt: skip
    write_tasks(store, tasks)
    cycle = [Category.UNRESOLVED] * 6 + [Category.PATCH_APPLY_FAILED, Category.RESOLVED, Category.UNRESOLVED,
                                         Category.TIMEOUT]  # fmt: skip
    for n, iid in enumerate(ids):
        cat = cycle[n % len(cycle)]
        ok = cat == Category.RESOLVED
        f2p = f"tests/test_mod.py::test_strict_{n}"
        verdict = Verdict(instance_id=iid, category=cat, resolution=Resolution.FULL if ok else Resolution.NO,
                          message="" if ok else "1 of 1 FAIL_TO_PASS tests failed",
                          tests={f2p: "PASSED" if ok else "FAILED"}, logs={"test": "test_output.txt"},
                          tests_status=TestsStatus(FAIL_TO_PASS={"success": [f2p] if ok else [],
                                                                 "failure": [] if ok else [f2p]}))  # fmt: skip
        store.unit_dir(iid, 0).mkdir(parents=True, exist_ok=True)
        (store.unit_dir(iid, 0) / "test_output.txt").write_text(synthetic_log(n, ok))
        store.write_unit(UnitRecord(instance_id=iid, index=0, temperature=0.0, max_iterations=50, settings_key="k",
                                    exit_status="finished", steps=20, patch=synthetic_patch(n), verdict=verdict))  # fmt: skip
        store.write_verdict(verdict)
        agent = store.unit_dir(iid, 0) / "agent"
        agent.mkdir(parents=True)
        (agent / "result.json").write_text(
            json.dumps({"exit_status": "finished", "needs_review": n % 5 == 0})
        )
        steps = [{"type": "step", "step": s, "action": {"tool": "bash", "command": f"pytest -k strict_{s}"},
                  "observation": "F" * 200} for s in range(1, 21)]  # fmt: skip
        (agent / "trajectory.jsonl").write_text("".join(json.dumps(e) + "\n" for e in steps))
    store.write_meta({"run_id": "bench", "model_name_or_path": "m"})
    store.write_report(ids)
    return store.root


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def floor_app(pages: dict[str, bytes]) -> Starlette:
    """The captured pages as fixed bytes, and the same static files, gzipped as the app does."""

    def fixed(body: bytes):  # type: ignore[no-untyped-def]
        async def endpoint(_request):  # type: ignore[no-untyped-def]
            return HTMLResponse(body)

        return endpoint

    routes: list[Route | Mount] = [Route(path, fixed(body)) for path, body in pages.items()]
    routes.append(Mount("/static", StaticFiles(packages=[("devloop.review", "static")])))
    return Starlette(routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=1024)])


MEASURE = """() => {
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  return { fcp: fcp ? fcp.startTime : null, ttfb: nav.responseStart,
           bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
           decoded: nav.decodedBodySize + res.reduce((s, r) => s + r.decodedBodySize, 0),
           html: nav.transferSize, requests: 1 + res.length };
}"""


def measure(browser, url: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url, wait_until="load")
    # Polled from here: wait_for_function would evaluate a string in the page, which the CSP forbids.
    for _ in range(200):
        out = page.evaluate(MEASURE)
        if out["fcp"] is not None:
            break
        page.wait_for_timeout(25)
    else:
        raise SystemExit(f"{url}: no first-contentful-paint entry")
    context.close()
    return out


EDITOR = """() => {
  const cm = performance.getEntriesByType('resource').filter(r => r.name.includes('codemirror'));
  return { bytes: cm.reduce((s, r) => s + r.transferSize, 0), decoded: cm.reduce((s, r) => s + r.decodedBodySize, 0) };
}"""


def measure_editor(browser, url: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """The correction editor, fetched when `e` is pressed: its bytes and the time until the merge view shows."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url, wait_until="load")
    start = time.perf_counter()
    page.keyboard.press("e")
    page.locator(".cm-mergeView").wait_for()
    shown = (time.perf_counter() - start) * 1000
    out = {**page.evaluate(EDITOR), "ms": shown}
    context.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--units", type=int, default=300, help="instances in the synthetic run (default 300)")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="devloop-bench-") as tmp:
        run_dir = make_run(Path(tmp), args.units)
        app = create_app(load_runs([run_dir]), token=TOKEN)
        client = TestClient(app)
        queued = len(client.get(f"/api/items?token={TOKEN}").json())
        first = client.get(f"/api/items?token={TOKEN}").json()[0]
        paths = {"queue": "/", "item": f"/item/bench/{first['instance_id']}/0"}
        captured = {path: client.get(f"{path}?token={TOKEN}") for path in paths.values()}
        if bad := [f"{path}: HTTP {r.status_code}" for path, r in captured.items() if r.status_code != 200]:
            raise SystemExit(f"the floor would serve an error page: {', '.join(bad)}")
        pages = {path: r.content for path, r in captured.items()}
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        with serving(app) as dev, serving(floor_app(pages)) as floor, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"])  # fmt: skip
            for base in (dev, floor):  # warm-up: the browser's own start, the server's first imports
                for path in paths.values():
                    measure(browser, f"{base}{path}?token={TOKEN}")
            for _ in range(args.rounds):
                for name, base in (("devloop", dev), ("floor", floor)):
                    for page_name, path in paths.items():
                        results.setdefault((name, page_name), []).append(
                            measure(browser, f"{base}{path}?token={TOKEN}")
                        )
            editor = [
                measure_editor(browser, f"{dev}{paths['item']}?token={TOKEN}") for _ in range(args.rounds)
            ]
            browser.close()
    print(
        f"run of {args.units} instances ({queued} queued), {args.rounds} alternating rounds, fresh context each:"
    )
    for page_name in paths:
        dev_r, floor_r = results[("devloop", page_name)], results[("floor", page_name)]
        med = {
            k: statistics.median(r[k] for r in dev_r)
            for k in ("fcp", "ttfb", "bytes", "decoded", "html", "requests")
        }
        fmed = {k: statistics.median(r[k] for r in floor_r) for k in ("fcp", "ttfb")}
        ratios = [d["fcp"] / f["fcp"] for d, f in zip(dev_r, floor_r, strict=True)]
        print(f"  {page_name} page: first contentful paint {med['fcp']:.0f} ms (floor {fmed['fcp']:.0f} ms, "
              f"{med['fcp'] / fmed['fcp']:.2f}x, spread {min(ratios):.2f}-{max(ratios):.2f}); "
              f"first byte {med['ttfb']:.0f} ms (floor {fmed['ttfb']:.0f} ms)")  # fmt: skip
        print(f"  {page_name} page: weight {med['bytes'] / 1024:.0f} KiB transferred in {med['requests']:.0f} "
              f"requests ({med['decoded'] / 1024:.0f} KiB unzipped; HTML {med['html'] / 1024:.0f} KiB)")  # fmt: skip
    ed = {k: statistics.median(r[k] for r in editor) for k in ("bytes", "decoded", "ms")}
    print(f"  editor (fetched on e): {ed['bytes'] / 1024:.0f} KiB transferred ({ed['decoded'] / 1024:.0f} KiB "
          f"unzipped), merge view shown {ed['ms']:.0f} ms after the key (median of {args.rounds})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
