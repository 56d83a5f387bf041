"""Resuming a run under other grading rules would mix verdicts of two rule sets: refused, like settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.eval.protocols import ProtocolConfig
from devloop.eval.resume import ProtocolError, check_resumable
from devloop.eval.store import RunStore


def _store(tmp_path: Path, meta: dict) -> RunStore:
    store = RunStore(tmp_path, "r")
    store.root.mkdir(parents=True)
    store.write_meta(meta)
    store.instances.mkdir()
    return store


def _resume(store: RunStore, grading: str, *, force: bool = False) -> None:
    check_resumable(store, ProtocolConfig(), [], {"protocol": ProtocolConfig().describe(), "settings": None,
                                                  "grading": grading}, [], force=force)  # fmt: skip


def test_other_grading_rules_are_refused_unless_forced(tmp_path: Path) -> None:
    store = _store(tmp_path, {"settings": None, "grading": "swebench4"})
    _resume(store, "swebench4")
    with pytest.raises(
        ProtocolError, match="graded with --grading swebench4, not swebench5; .*--force-resume"
    ):
        _resume(store, "swebench5")
    _resume(store, "swebench5", force=True)


def test_a_run_from_before_the_rules_were_recorded_counts_as_swebench4(tmp_path: Path) -> None:
    store = _store(tmp_path, {"settings": None})
    _resume(store, "swebench4")
    with pytest.raises(ProtocolError, match="graded with --grading swebench4, not swebench5"):
        _resume(store, "swebench5")
