"""A shell's scratch dir, and what closing the shell must release.

Command files go in `cmd/`, where only the host writes; output files in `out/`, where the commands
write. A sandbox binds the first read-only, so a model can never plant a link the host would write
through.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from devloop.runtime.bash_process import ShellSession
from devloop.runtime.stale import mark_owner
from devloop.safefs.tree import remove_tree


def make_scratch(scratch_dir: Path | None) -> tuple[Path, bool]:
    """The scratch dir with its `cmd/` and `out/`, and whether it is the shell's own to remove: a private
    temp dir marked with its owner (so that the next run removes it if this one is killed), or the
    given one, of which only the shell's files are removed."""
    if scratch_dir is None:
        scratch, own = Path(tempfile.mkdtemp(prefix="devloop-shell-")), True
        mark_owner(scratch)
    else:
        scratch, own = Path(scratch_dir).absolute(), False
        scratch.mkdir(parents=True, exist_ok=True)
    for sub in (scratch / "cmd", scratch / "out"):
        sub.mkdir(mode=0o755, exist_ok=True)
    return scratch, own


class ShellResources:
    """What close() (or garbage collection, or interpreter exit) must release; holds no ref to the shell."""

    def __init__(self, scratch: Path, own_scratch: bool, *, later: bool = False) -> None:
        self.session: ShellSession | None = None
        self.scratch = scratch
        self.own_scratch = own_scratch
        self.later = later  # the files' removal on the background thread (runtime/later.py)
        self.closing = False  # set by close(): the release is an explicit one
        self.files: list[Path] = []
        self.known_dead = False  # set by a runtime that saw every process of the shell die

    def release(self) -> None:
        if self.session is not None:
            self.session.kill_all(known_dead=self.known_dead)
            self.session = None
        # Every process of the shell is dead: nothing writes there any more, only the files wait.
        files, self.files = list(self.files), []
        # Only from an explicit close: a shell left to the garbage collector, or to the interpreter's exit
        # (where a thread started now would not be waited for), removes its files here and now.
        if self.later and self.closing:
            from devloop.runtime.later import call_later

            call_later(lambda: self._remove(files))
        else:
            self._remove(files)

    def _remove(self, files: list[Path]) -> None:
        if self.own_scratch:
            remove_tree(self.scratch)
            return
        for path in files:
            with contextlib.suppress(OSError):  # a command may have put a directory there
                path.unlink(missing_ok=True)
