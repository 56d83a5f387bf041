"""The test-feedback loop (issue 6): test hook, failure summaries, checkpoints and rollback, events, metrics,
live diff (engineer A), and rescue rules, minimisation and queues (engineer B).

`build_feedback(settings, workspace=, runtime=, out_dir=)` is the entry point for session.py; names are
imported lazily so that `devloop.feedback.base` stays cheap to import.
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
