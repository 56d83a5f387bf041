"""One-line errors for bad input: `error: <what> (<where>)` on stderr and exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)
