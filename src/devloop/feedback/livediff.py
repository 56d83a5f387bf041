"""--stream-diff: the cumulative diff shown whenever it changes, on the terminal or in a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def diff_stats(patch: str) -> tuple[int, int, int]:
    """(files, added lines, removed lines) of a git diff."""
    files = added = removed = 0
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return files, added, removed


class DiffStreamer:
    """Shows the diff when it differs from the last one shown. target: "-" (terminal, on stderr so that
    stdout stays machine-readable) or a file path, rewritten atomically (readers never see half a diff)."""

    def __init__(self, target: str, *, console: Console | None = None) -> None:
        from rich.console import Console  # here: rich costs ~25 ms at import, and most runs show no diff

        self.target = target
        self.console = console or Console(stderr=True)
        self.last: str | None = None
        self.updates = 0

    def update(self, patch: str, *, step: int | None = None) -> bool:
        """Show `patch` if it changed; returns whether it did."""
        if patch == self.last:
            return False
        self.last = patch
        self.updates += 1
        if self.target == "-":
            from rich.rule import Rule
            from rich.syntax import Syntax

            files, added, removed = diff_stats(patch)
            title = f"diff after step {step}" if step is not None else "diff"
            self.console.print(Rule(f"{title}: {files} files, +{added} -{removed}"))
            if patch:
                self.console.print(Syntax(patch, "diff", theme="ansi_dark", word_wrap=False))
            else:
                self.console.print("(no changes)")
        else:
            _write_atomic(Path(self.target), patch)
        return True


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
