"""`devloop chat`: the agent on the user's tree in place, one checkpoint per turn on a private ref.

This is the typer command (its --help, and any arguments devloop.cli.chat_start.parse leaves to typer);
both run devloop.cli.chat_start.run_chat."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from devloop.cli import options as o
from devloop.cli.chat_start import ChatArgs, Output, run_chat


def register(app: typer.Typer) -> None:
    app.command("chat")(o.with_agent_options(chat, without=("max_iterations",)))


def chat(
    repo: Annotated[Path, typer.Option("--repo", help="The repository to work in \\[default: .].")] = Path(
        "."
    ),
    prompt: Annotated[str | None, typer.Option("-p", help="Headless: one task, then exit.")] = None,
    output: Annotated[Output, typer.Option("--output", help="With -p: text, json or stream.")] = Output.text,
    max_turns: Annotated[
        int | None, typer.Option("--max-turns", help="With -p: model calls for the task \\[default: 50].")
    ] = None,
    cont: Annotated[
        bool, typer.Option("--continue", help="Go on with the last session in this repository.", metavar="")
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume", help="Go on with session ID; `--resume list` lists this repository's sessions."
        ),
    ] = None,
    auto_edit: Annotated[
        bool, typer.Option("--auto-edit", help="Apply edits without asking (each diff is still shown).")
    ] = False,
    **agent: Any,
) -> None:
    """Chat with the agent about a repository; it edits the tree in place, commands run in the sandbox.

    Each turn is checkpointed first on a private ref. With -p: exit code 0 when the agent finished, 1 when
    it stopped otherwise (a limit, a model error...), 2 for bad usage.
    """
    args = ChatArgs(repo, prompt, output, max_turns, cont, resume, auto_edit, agent)
    raise typer.Exit(run_chat(args))
