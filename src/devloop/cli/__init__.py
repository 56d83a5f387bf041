"""The `devloop` command line (typer). Each subcommand lives in its own module."""

from __future__ import annotations

import sys
from typing import Any

import typer
import typer.main

from devloop import __version__

app = typer.Typer(
    name="devloop",
    help="A coding agent for any OpenAI-compatible model, and the lab to evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # help texts escape literal brackets as \[
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"devloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """devloop resolves issues in a repository with a model of your choice, and measures how well it does."""


def _register() -> None:
    from devloop.cli import (
        compare_cmd,
        demo_cmd,
        eval_cmd,
        policy_cmd,
        replay_cmd,
        report_cmd,
        run_cmd,
        sweep_cmd,
    )

    for mod in (run_cmd, replay_cmd, demo_cmd, eval_cmd, sweep_cmd, report_cmd, compare_cmd, policy_cmd):
        mod.register(app)


def _flags_take_no_value(command: Any) -> None:
    """typer writes `<bool>` after every on/off flag in --help, as if it took a value; a flag takes none."""
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    made = command.get_help_option  # --help is made on demand, not listed in params

    def help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _flags_take_no_value(sub)


def main() -> None:
    _register()
    command = typer.main.get_command(app)
    _flags_take_no_value(command)
    try:
        command(prog_name="devloop")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
