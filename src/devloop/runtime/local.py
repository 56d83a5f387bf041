"""The unsandboxed runtime: the agent's commands run directly on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devloop.runtime.shell import PersistentShell


class LocalRuntime(PersistentShell):
    """A PersistentShell with no wrapper: commands run as this user, with this machine's files.

    Takes PersistentShell's keyword arguments except `spawn_prefix`.
    """

    def __init__(self, root: Path, **kw: Any) -> None:
        if "spawn_prefix" in kw:
            raise TypeError("LocalRuntime takes no spawn_prefix; use PersistentShell to wrap the shell")
        super().__init__(root, **kw)
