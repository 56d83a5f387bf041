"""One-line errors for bad input: `error: <what> (<where>)` on stderr and exit code 2."""

from __future__ import annotations

from typing import NoReturn


def fail(message: str, code: int = 2) -> NoReturn:
    # rich and typer load here, not with the module: chat's start, which needs neither, imports this
    import typer
    from rich.console import Console
    from rich.markup import escape

    # Escaped: the message quotes input (ids, paths) and a `[/]` in it must not be read as markup.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}", markup=True
    )
    raise typer.Exit(code)
