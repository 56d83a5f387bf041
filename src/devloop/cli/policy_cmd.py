"""`devloop policy show`: the effective command policy, rule by rule, and where each rule came from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devloop.cli.errors import fail
from devloop.policy import PolicyError, load_policy, project_policy_file, user_policy_file

policy_app = typer.Typer(
    name="policy",
    help="Inspect the command policy (which tool calls are allowed, asked about, or denied).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the `policy` command group to `app`."""
    app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def show(
    project: Annotated[
        Path, typer.Option("--project", help="Project directory whose .devloop/policy.toml applies.")
    ] = Path("."),
    user_file: Annotated[
        Path | None, typer.Option("--user-file", help="User policy file \\[default: user config dir].")
    ] = None,
    policy_file: Annotated[
        list[Path] | None, typer.Option("--policy", help="Extra policy file, tried first (repeatable).")
    ] = None,
) -> None:
    """Print the effective policy: rules in the order they are tried (the first match decides)."""
    try:
        policy = load_policy(project, user_file=user_file, extra_files=policy_file or ())
    except PolicyError as e:
        fail(str(e))
    console = Console(highlight=False, width=max(Console().width, 140))
    table = Table(title="Command policy (first matching rule decides; no match allows)", show_lines=False)
    for column in ("#", "tool", "pattern", "action", "reason", "source"):
        table.add_column(column, overflow="fold")
    for n, rule in enumerate(policy.rules, 1):
        action = rule.action + ("" if rule.mode == "any" else f" ({rule.mode} only)")
        table.add_row(
            str(n), rule.tool, escape(rule.describe()), action, escape(rule.reason), escape(rule.source)
        )
    console.print(table)
    console.print(
        f"user file: {user_file or user_policy_file()}  project file: {project_policy_file(project)}",
        markup=False,
    )
    console.print("In batch runs an `ask` rule denies. The sandbox, not this policy, is the guarantee.")
