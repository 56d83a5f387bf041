"""`devloop complete FILE --line N [--col C]`: print the model's fill-in-the-middle insertion at a cursor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from devloop.cli import options as o
from devloop.cli.errors import fail


def register(app: typer.Typer) -> None:
    app.command("complete", no_args_is_help=True)(complete)


def complete(
    file: Annotated[Path, typer.Argument(help="The source file (read, never written).", show_default=False)],
    line: Annotated[int, typer.Option("--line", help="The cursor's line, from 1.", show_default=False)],
    col: Annotated[
        int | None,
        typer.Option("--col", help="The cursor's column, from 1 \\[default: the end of the line]."),
    ] = None,
    model: o.Model = None,
    base_url: o.BaseUrl = None,
    api_key_env: o.ApiKeyEnv = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Cap on the insertion's tokens \\[default: 256].")
    ] = None,
    temperature: o.Temperature = None,
) -> None:
    """Fill in the middle at FILE:LINE:COL and print the insertion only (no newline added): Mistral's FIM
    endpoint for mistral/ models, the `suffix` of /v1/completions for openai/ servers that support it.

    Exit code 0 with the insertion, 1 when the server fails or refuses, 2 for bad usage."""
    from devloop.complete import CursorError, complete_at
    from devloop.config import ConfigError, load_settings
    from devloop.models.base import ModelError

    try:
        settings = load_settings(model=model, base_url=base_url, api_key_env=api_key_env)
    except ConfigError as e:
        fail(str(e))
    if not settings.model:
        fail("--model is required (or set DEVLOOP_MODEL / model in devloop.toml)")
    try:
        text = complete_at(
            file,
            line,
            col,
            settings.model,
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            max_tokens=max_tokens or settings.max_tokens or 256,
            temperature=temperature if temperature is not None else settings.temperature,
            timeout=min(settings.request_timeout, 120.0),
        )
    except (CursorError, ValueError) as e:
        fail(str(e))
    except ModelError as e:
        fail(e.reason, code=1)
    sys.stdout.write(text)
    sys.stdout.flush()
