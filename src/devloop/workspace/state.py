"""What a workspace keeps between steps (the last staging it trusts) and where its git commands run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass
class _Known:
    """What the last staging found: the tree (and the patch, once computed), and the settled scan taken
    just before it, which later scans are compared with."""

    scan: bytes
    tree: str | None  # None: not yet written as a tree (staged in the index if `staged`)
    patch: str | None
    staged: bool = True  # False: the patch came from the work tree, the index holds an earlier staging


class _Failed(Exception):
    def __init__(self, code: int | None, output: str) -> None:
        self.code, self.output = code, output


class Executor(Protocol):
    """Where bookkeeping commands run: a runtime's `exec` (see runtime/shell.py)."""

    def exec(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = ...,
        timeout: float = ...,
        env: dict[str, str] | None = ...,
        rw_binds: Sequence[Path] = ...,
        root_writable: bool = ...,
        cwd: Path | None = ...,
    ) -> object: ...
