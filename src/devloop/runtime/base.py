"""The runtime seam: where the agent's commands run (local shell, bubblewrap sandbox, docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from devloop.types import CommandResult


class RuntimeFailure(Exception):
    """The runtime itself failed (could not start a shell, sandbox broken). Ends a run as runtime_error."""


class Runtime(Protocol):
    # The workspace root, on the host; inside a sandbox it is mounted at the same path.
    root: Path

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run `command` in the persistent shell (cwd, env, functions persist between calls).

        On timeout the command's processes are killed, the partial output returned with
        timed_out=True, and the session survives. stdin is /dev/null.
        """
        ...

    def close(self) -> None:
        """End the shell and everything it started."""
        ...
