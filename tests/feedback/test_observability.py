"""events.jsonl, the Prometheus endpoint, the live diff, the settings and the builder."""

from __future__ import annotations

import json
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from devloop.feedback.events import EventLog, patch_sha
from devloop.feedback.livediff import DiffStreamer, diff_stats
from devloop.feedback.loop import build_feedback
from devloop.feedback.metrics import Metrics
from devloop.feedback.settings import FeedbackSettings
from devloop.runtime import LocalRuntime
from devloop.workspace import Workspace

REQUIRED = {"ts", "kind", "retry", "queue", "patch_sha", "test", "status", "trace_bytes", "step", "timings"}


def test_event_log_lines_carry_the_required_fields_and_context(tmp_path: Path) -> None:
    seen: list[dict] = []
    log = EventLog(tmp_path / "events.jsonl", listeners=[seen.append])
    log.set_context(step=3, queue="fast", patch_sha=patch_sha("diff"))
    log.emit("test_run", test="2 selected", status="failing", trace_bytes=120, timings={"test_s": 0.5})
    log.emit("rescue", rule="missing_module", status="applied", queue="rescue")
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and seen == lines
    assert all(e.keys() >= REQUIRED for e in lines)
    assert lines[0]["step"] == 3 and lines[0]["queue"] == "fast" and lines[0]["trace_bytes"] == 120
    assert lines[0]["patch_sha"] == patch_sha("diff") and len(lines[0]["patch_sha"]) == 12
    assert lines[1]["queue"] == "rescue" and lines[1]["rule"] == "missing_module"


def test_metrics_are_served_on_a_free_port_and_count_events() -> None:
    first, second = Metrics(0), Metrics(0)  # private registries: two runs in one process
    try:
        assert first.port and second.port and first.port != second.port
        first.steps.inc(2)
        first.test_latency.observe(0.3)
        log = EventLog(None, listeners=[first.on_event])
        log.emit("rollback", status="restored")
        log.emit("rescue", rule="syntax_error")
        body = urllib.request.urlopen(f"http://127.0.0.1:{first.port}/metrics", timeout=5).read().decode()
        assert "devloop_steps_total 2.0" in body
        assert "devloop_rollbacks_total 1.0" in body
        assert 'devloop_rescues_total{rule="syntax_error"} 1.0' in body
        assert "devloop_test_latency_seconds_count 1.0" in body
        other = urllib.request.urlopen(f"http://127.0.0.1:{second.port}/metrics", timeout=5).read().decode()
        assert "devloop_steps_total 0.0" in other
    finally:
        first.close()
        second.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{first.port}/metrics", timeout=2)


def test_stream_diff_to_a_file_is_rewritten_atomically_only_on_change(tmp_path: Path) -> None:
    target = tmp_path / "live" / "current.diff"
    streamer = DiffStreamer(str(target))
    patch = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"
    assert streamer.update(patch) is True
    assert target.read_text() == patch
    assert streamer.update(patch) is False and streamer.updates == 1
    assert streamer.update("") is True and target.read_text() == ""
    assert [p.name for p in target.parent.iterdir()] == ["current.diff"]  # no temp files left


def test_stream_diff_to_the_terminal() -> None:
    out = StringIO()
    streamer = DiffStreamer("-", console=Console(file=out, width=100, color_system=None))
    streamer.update("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n", step=4)
    text = out.getvalue()
    assert "diff after step 4: 1 files, +1 -1" in text and "+new" in text
    assert diff_stats("diff --git a/x b/x\n--- a/x\n+++ b/x\n+a\n+b\n-c\n") == (1, 2, 1)


def test_settings_defaults_and_errors() -> None:
    s = FeedbackSettings()
    assert (s.hook, s.timeout_test, s.hook_scope, s.summary_tokens, s.rollback_threshold, s.max_retry) == (
        None,
        60.0,
        "related",
        512,
        3,
        20,
    )
    assert not s.feedback_enabled()
    assert FeedbackSettings(stream_diff="-").feedback_enabled()
    for bad in ({"hook_scope": "some"}, {"timeout_test": 0}, {"hook": "  "}, {"metrics_port": 70000}):
        with pytest.raises(ValidationError):
            FeedbackSettings(**bad)


def test_build_feedback_is_none_without_flags_and_wires_the_parts(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.py").write_text("a = 1\n")
    ws = Workspace.create(tmp_path / "repo", parent=tmp_path)
    with LocalRuntime(ws.root) as rt:
        assert build_feedback(FeedbackSettings(), workspace=ws, runtime=rt, out_dir=tmp_path / "out") is None
        loop = build_feedback(
            FeedbackSettings(hook="make test", metrics_port=0),
            workspace=ws,
            runtime=rt,
            out_dir=tmp_path / "out",
        )
        assert loop is not None
        try:
            assert loop.hooks == [loop.hook] and loop.runner is not None and loop.retries_left == 20
            fields = loop.result_fields()
            assert (
                fields["test_runs"] == 0
                and fields["rollbacks"] == 0
                and fields["metrics_port"] == loop.metrics.port
            )
            assert fields["events_path"] == str(tmp_path / "out" / "events.jsonl")
        finally:
            loop.close()
            loop.close()  # idempotent
