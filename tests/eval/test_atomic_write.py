"""Records written whole or not at all, with or without fsync."""

from __future__ import annotations

from pathlib import Path

from devloop.eval.store import atomic_write


def test_atomic_write_with_and_without_fsync(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.json", "one\n")
    atomic_write(tmp_path / "a.json", "two\n", durable=False)
    assert (tmp_path / "a.json").read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left
