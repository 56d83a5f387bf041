"""One-line errors for bad input: `error: <what> (<where>)` on stderr and exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    # Escaped: the message quotes input (ids, paths) and a `[/]` in it must not be read as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)
