"""The test-feedback loop: test hook, failure summaries, checkpoints and rollback, events, metrics, live
diff, rescue rules, minimisation and queues.

`build_feedback(settings, workspace=, runtime=, out_dir=, rules=)` is the entry point for the session; names
are imported lazily so that `devloop.feedback.base` stays cheap to import.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "build_feedback": "devloop.feedback.loop",
    "FeedbackLoop": "devloop.feedback.loop",
    "FeedbackHook": "devloop.feedback.hook",
    "FeedbackSettings": "devloop.feedback.settings",
    "EventLog": "devloop.feedback.events",
    "Metrics": "devloop.feedback.metrics",
    "Checkpoints": "devloop.feedback.checkpoints",
    "TestSelector": "devloop.feedback.selection",
    "PytestRunner": "devloop.feedback.runners",
    "JestRunner": "devloop.feedback.runners",
    "CommandRunner": "devloop.feedback.runners",
    "make_runner": "devloop.feedback.runners",
    "summarize": "devloop.feedback.summary",
    "DiffStreamer": "devloop.feedback.livediff",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'devloop.feedback' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
