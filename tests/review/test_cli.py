"""`devloop review` as a user starts it: the URL with its token on one line, then a real HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devloop.review.decisions import REVIEWS, append_decision, patch_sha256

from .conftest import patch_for


def test_serves_on_localhost_and_prints_the_url_with_its_token(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "devloop", "review", str(run_dir), str(tmp_path / "notes"),
                             "--reviewer", "bo"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("devloop review: http://127.0.0.1:") and "?token=" in line
        url = line.split(" ", 2)[2]
        token = url.split("token=")[1]
        base = url.split("/?")[0]
        page = httpx.get(url).text
        assert "b__b-2" in page and "notes: not a devloop run directory" in page  # the bad path, named
        port = base.rsplit(":", 1)[1]
        assert httpx.get(url, headers={"host": f"rebound.example:{port}"}).status_code == 400
        form = {"run": "run1", "instance_id": "a__a-1", "attempt": "0", "action": "accept"}
        assert httpx.post(base + "/api/decision", data=form).status_code == 403
        assert httpx.post(base + "/api/decision", data={**form, "token": token}).json()["reviewer"] == "bo"
        assert httpx.get(base + "/static/vendor/htmx.min.js").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stderr is not None and "warning: " + str(tmp_path / "notes") in proc.stderr.read()


def test_not_a_run_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", "review", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "not a devloop run directory" in proc.stderr and "Traceback" not in proc.stderr


def test_an_export_with_a_path_that_is_not_a_run_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    out = tmp_path / "preds.jsonl"
    proc = subprocess.run([sys.executable, "-m", "devloop", "review", str(run_dir), str(tmp_path / "notes"),
                           "--export-predictions", str(out)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and f"{tmp_path / 'notes'}: not a devloop run directory" in proc.stderr
    assert not out.exists() and "Traceback" not in proc.stderr


def test_an_export_names_the_reviews_lines_it_skipped(run_dir: Path, tmp_path: Path) -> None:
    append_decision(run_dir, {"instance_id": "a__a-1", "attempt": 0, "action": "accept",
                              "model_patch_sha256": patch_sha256(patch_for("a.py", "new a"))})  # fmt: skip
    with (run_dir / REVIEWS).open("a") as fh:
        fh.write("{not json\n")
    out = tmp_path / "preds.jsonl"
    proc = subprocess.run([sys.executable, "-m", "devloop", "review", str(run_dir), "--export-predictions", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {run_dir / REVIEWS}:2: not a review decision (JSONDecodeError), skipped" in proc.stderr
    assert [json.loads(line)["instance_id"] for line in out.read_text().splitlines()] == ["a__a-1"]


def test_open_hands_the_url_to_the_browser_and_a_loopback_host_is_guarded_without_a_warning(
    run_dir: Path, tmp_path: Path
) -> None:
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" > {opened}.tmp && mv {opened}.tmp {opened}\n")
    browser.chmod(0o755)
    proc = subprocess.Popen([sys.executable, "-m", "devloop", "review", str(run_dir), "--host", "127.0.0.2", "--open"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "BROWSER": str(browser)})  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split(" ", 2)[2]
        assert url.startswith("http://127.0.0.2:")
        for _ in range(200):
            if opened.exists():
                break
            time.sleep(0.05)
        assert opened.read_text().strip() == url  # the browser got the URL with its token
        port = url.split("/?")[0].rsplit(":", 1)[1]
        assert httpx.get(url).status_code == 200
        assert httpx.get(url, headers={"host": f"rebound.example:{port}"}).status_code == 400
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stderr is not None and "warning" not in proc.stderr.read()


def test_a_host_that_is_not_loopback_is_warned_and_a_failed_bind_is_one_line(run_dir: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes, then the bind is refused.
    proc = subprocess.run([sys.executable, "-m", "devloop", "review", str(run_dir), "--host", "192.0.2.1"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        "warning: serving on 192.0.2.1, not loopback: anyone who can reach it can read the queue"
        in proc.stderr
    )
    assert "--host 192.0.2.1 --port 0: cannot bind" in proc.stderr


def test_without_the_review_extra_serving_is_one_line_naming_it(run_dir: Path) -> None:
    code = ("import sys; sys.modules['uvicorn'] = None; from devloop.cli import main; "
            f"sys.argv = ['devloop', 'review', {str(run_dir)!r}]; main()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'devloop[review]'" in proc.stderr
