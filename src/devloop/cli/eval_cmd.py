"""`devloop eval`: placeholder replaced when the harness lands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
