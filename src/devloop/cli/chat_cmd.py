"""`devloop chat`: the agent on the user's tree in place, one checkpoint per turn on a private ref."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from devloop.cli import options as o
from devloop.cli.errors import fail


class Output(StrEnum):
    text = "text"
    json = "json"
    stream = "stream"


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
    from devloop.chat.headless import emit, final_json, open_session, run_turn, step_event
    from devloop.config import ConfigError, load_settings

    if cont and resume:
        fail("give --continue or --resume ID, not both")
    if not repo.is_dir():
        fail(f"--repo {repo}: not a directory")
    overrides = o.settings_overrides({**agent, "max_iterations": max_turns})
    try:
        settings = load_settings(**overrides)
    except ConfigError as e:
        fail(str(e))
    if "tool_format" not in settings.model_fields_set:  # not given anywhere: chat parses any format
        settings = settings.model_copy(update={"tool_format": "auto"})
    if "condense" not in settings.model_fields_set:  # a long conversation must keep fitting the window
        settings = settings.model_copy(update={"condense": True})
    if not settings.model:
        fail("--model is required (or set DEVLOOP_MODEL / model in devloop.toml)")
    if resume == "list":
        from devloop.chat.checkpoint import store_root
        from devloop.chat.sessions import ChatSession, list_sessions

        for sid in list_sessions(store_root(repo)):
            try:
                s = ChatSession.load(store_root(repo), sid)
            except ValueError as e:
                typer.echo(str(e), err=True)
                continue
            first = s.turns[0].prompt[:60] if s.turns else "(no turns)"
            typer.echo(f"{sid}  {len(s.turns):3} turn(s)  {first}")
        raise typer.Exit(0)
    try:
        session, checkpoints = open_session(repo, cont, resume)
    except ValueError as e:
        fail(str(e))
    from devloop.chat.approvals import load as load_approvals
    from devloop.chat.checkpoint import store_root

    approvals = load_approvals(repo, store_root(repo))  # the policy's "ask" rules: answered by these
    if approvals.warning and prompt is not None:
        typer.echo(f"warning: {approvals.warning}", err=True)
    if prompt is None:
        from devloop.chat.commands import Chat, show_history
        from devloop.chat.ui import make_ui

        chat = None
        ui = make_ui(repo, store_root(repo) / "history", lambda: status_line(chat))
        ui.say(f"devloop chat · session {session.id} · {settings.model} · /help for commands, /exit to leave")
        if approvals.warning:
            ui.say(f"warning: {approvals.warning}")
        if cont or resume:
            show_history(ui, session)
        chat = Chat(repo, settings, session, checkpoints, ui, approvals, auto_edit=auto_edit)
        chat.loop()
        raise typer.Exit(0)
    on_step = (lambda info: emit(step_event(info))) if output is Output.stream else None
    on_text = {
        Output.stream: lambda delta: emit({"type": "text", "delta": delta}),
        Output.text: lambda delta: typer.echo(delta, err=True, nl=False),
    }.get(output)
    from devloop.chat.context import turn_context

    context, files = turn_context(repo, prompt, settings.model, checkpoints.gitdir)
    for problem in files.problems:
        typer.echo(f"warning: {problem}", err=True)
    try:
        result = run_turn(
            repo,
            prompt,
            settings,
            session,
            checkpoints,
            on_step=on_step,
            on_text=on_text,
            ask=approvals.answer,
            on_warning=lambda w: typer.echo(f"warning: {w}", err=True),
            context=context,
            images=files.images,
        )
    except ValueError as e:
        fail(str(e))
    if output is Output.text:
        typer.echo(result.reason)
        typer.echo(f"[{result.exit_status} · session {session.id} · turn {len(session.turns)}]", err=True)
    else:
        emit(final_json(result, session))
    raise typer.Exit(0 if result.exit_status == "finished" else 1)


def status_line(chat: Any) -> str:
    """The bottom bar: session, model, turns, tokens so far."""
    if chat is None:
        return ""
    turns = chat.session.turns
    used = sum(t.prompt_tokens + t.completion_tokens for t in turns)
    return f"{chat.settings.model} · session {chat.session.id} · {len(turns)} turn(s) · {used:,} tokens"
