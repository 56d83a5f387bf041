"""`devloop replay`: render a trajectory for a person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

from devloop.cli.errors import fail
from devloop.cli.safe_text import shown
from devloop.trajectory import read_trajectory


def register(app: typer.Typer) -> None:
    app.command("replay", no_args_is_help=True)(replay)


def replay(
    trajectory: Annotated[
        Path, typer.Argument(help="A trajectory.jsonl (or the run directory holding one).")
    ],
    full: Annotated[
        bool, typer.Option("--full", help="Show observations whole instead of their first lines.")
    ] = False,
    prompts: Annotated[
        bool, typer.Option("--prompts", help="Also show the system and task prompts.")
    ] = False,
) -> None:
    """Render a run's trajectory step by step: the model's reasoning, its tool calls and what they returned."""
    path = trajectory / "trajectory.jsonl" if trajectory.is_dir() else trajectory
    if not path.is_file():
        fail(f"no trajectory at {path}")
    # Panels wrap their text to the terminal; commands and reasoning are printed with soft_wrap (the
    # terminal wraps them), so nothing is cut at the terminal's width.
    console = Console(highlight=False)
    last: dict[str, Any] = {}
    try:
        for n, event in enumerate(read_trajectory(path), 1):
            try:
                _render(console, event, full=full, prompts=prompts)
            except (AttributeError, KeyError, TypeError, ValueError):
                fail(f"{path}: event {n}: not a devloop trajectory (a malformed {event['type']} event)")
            last = event
    except ValueError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    if not last:
        fail(f"{path}: an empty trajectory (the run was killed before it started?)")
    if last.get("type") != "end":
        steps = last.get("step", 0) if last.get("type") == "step" else 0
        console.rule(f"[yellow]no end[/] after step {steps}", style="yellow")
        console.print(
            "The run was killed (or is still going). `devloop recover "
            f"{escape(str(path.parent))}` writes its result.json and patch.diff from this trajectory.",
            soft_wrap=True,
        )


def _render(console: Console, ev: dict[str, Any], *, full: bool, prompts: bool) -> None:
    kind = ev.get("type")
    if kind == "start":
        console.rule(style="bold")
        console.print(
            f"[bold]{_safe(str(ev.get('model')))}[/] on {_safe(str(ev.get('repo')))}", soft_wrap=True
        )
        if prompts:
            console.print(Panel(_safe(ev.get("system", "")), title="system"))
        console.print(Panel(_safe(ev.get("task", "")), title="task"))
    elif kind == "step":
        comp = ev.get("completion") or {}
        usage = ev.get("usage") or {}
        console.rule(
            f"step {ev.get('step')} · {usage.get('prompt_tokens', 0):,}+"
            f"{usage.get('completion_tokens', 0):,} tok · model {(ev.get('timings') or {}).get('model_s', 0):.2f} s",
            align="left",
            style="dim",
        )
        if (comp.get("content") or "").strip():
            console.print(f"[italic]{_safe(comp['content'].strip())}[/]", soft_wrap=True)
        for call, obs in zip(ev.get("calls") or [], ev.get("observations") or [], strict=False):
            _render_call(console, call)
            text = obs.get("text", "")
            if not full and text.count("\n") > 15:
                text = "\n".join(text.splitlines()[:15]) + f"\n… ({text.count(chr(10)) - 15} more lines)"
            console.print(Panel(_safe(text), border_style="red" if obs.get("is_error") else "dim"))
        if ev.get("format_error"):
            console.print(Panel(_safe(ev["format_error"]), title="format error", border_style="red"))
    elif kind == "end":
        res = ev.get("result") or {}
        console.rule(
            f"[bold]{res.get('exit_status')}[/] after {res.get('steps')} steps · {res.get('duration_s')} s"
        )
        if res.get("reason"):
            console.print(_safe(res["reason"]), soft_wrap=True)


def _render_call(console: Console, call: dict[str, Any]) -> None:
    name, args = call.get("name"), call.get("arguments") or {}
    if name == "execute_bash":
        console.print(
            Syntax(
                "$ " + shown(args.get("command", "")), "bash", theme="ansi_dark", background_color="default"
            ),
            soft_wrap=True,
        )
    else:
        given = {k: v for k, v in args.items() if v is not None}
        console.print(
            f"[bold cyan]{_safe(str(name))}[/] " + _safe(json.dumps(given, ensure_ascii=False)[:2000]),
            soft_wrap=True,
        )


def _safe(text: object) -> str:
    """Model-written text for rich: control characters visible, markup escaped."""
    return escape(shown(text))
