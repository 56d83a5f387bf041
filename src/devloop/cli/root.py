"""The typer application behind `devloop`: the root group, which imports a command's module only when
that command runs or shows its own help (see devloop.cli.COMMANDS)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
import typer.core
import typer.main

from devloop import __version__
from devloop.cli import COMMANDS, settle


class _LazyGroup(typer.core.TyperGroup):
    """The root group: a command's module is imported when the command is looked up to run (or to show
    its own help); the root's --help lists the one-liners of COMMANDS without importing anything."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        if self._listing:
            return typer.core.TyperCommand(name=cmd_name, help=COMMANDS[cmd_name][1])
        # Never the copy _register() put on `app`: that one is built with the root's plain-text help, where
        # the texts' rich escapes (\[default: ...]) would show; once registered in a process, every later
        # `devloop CMD --help` in it would print them.
        return _load(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


_loaded: dict[str, Any] = {}


def _load(name: str) -> Any:
    """The click command `name`, built from its module the first time it is asked for."""
    if name not in _loaded:
        module = importlib.import_module(f"devloop.cli.{COMMANDS[name][0]}")
        holder = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False)
        module.register(holder)
        command = typer.main.get_group(holder).commands[name]
        _flags_take_no_value(command)
        _loaded[name] = command
        settle()  # the command's modules live until exit
    return _loaded[name]


app = typer.Typer(
    cls=_LazyGroup,
    name="devloop",
    help="A coding agent for any OpenAI-compatible model, and the lab to evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # The root's --help is click's plain text: typer's rich help would import markdown-it and friends
    # (~0.2 s). Each command's own help is rich (_load), where texts escape literal brackets as \[.
    rich_markup_mode=None,
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
    """Register every command on `app` now (for callers that drive `app` directly, e.g. CliRunner)."""
    for name, (module, _) in COMMANDS.items():
        groups = {g.name for g in app.registered_groups}
        if not any(c.name == name for c in app.registered_commands) and name not in groups | {"policy"}:
            importlib.import_module(f"devloop.cli.{module}").register(app)
    if not any(g.name == "policy" for g in app.registered_groups):
        importlib.import_module("devloop.cli.policy_cmd").register(app)


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
    command = typer.main.get_command(app)
    _flags_take_no_value(command)
    try:
        command(prog_name="devloop")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
