"""`devloop chat` from its arguments to its first prompt, without typer, click or pydantic on the way.

`devloop chat` is started often and the first prompt is what the user waits for, so `devloop.cli.main`
hands chat's arguments to `parse` first: a plain reading of every flag chat takes, which gives up (returns
None) on anything it is not sure to read exactly as click would (`--help`, an unknown flag, a value that
does not parse, `--`, a value starting with `-`); typer then parses them, errors and help included. The
typer command (chat_cmd) and this path run the same `run_chat`.

In an interactive terminal, with the model known without validating the settings (the flag, a DEVLOOP_MODEL
variable or a devloop.toml `model`: devloop.chat.startup.model_hint), the settings (pydantic) are loaded
after the prompt is drawn; a bad one still ends the chat with its one-line error and exit code 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devloop.config import RunSettings


class Output(StrEnum):
    text = "text"
    json = "json"
    stream = "stream"


# parameter -> kind, for every flag chat takes: its own, then the agent options of devloop.cli.options
# (but --max-iterations), as `--name-with-dashes`. Kinds: str, int, float, path, strs / paths (repeatable),
# output (an Output), flag (present: True). tests/chat/test_chat_start.py holds this to typer's reading.
OWN: dict[str, str] = {"repo": "path", "prompt": "str", "output": "output", "max_turns": "int",
                       "cont": "flag", "resume": "str", "auto_edit": "flag"}  # fmt: skip
AGENT: dict[str, str] = {
    "model": "str", "base_url": "str", "api_key_env": "str", "tool_format": "str", "temperature": "float",
    "top_p": "float", "max_tokens": "int", "seed": "int", "max_retries": "int", "max_tokens_total": "int",
    "time_limit": "float", "command_timeout": "float", "output_cap": "int", "prompt_dir": "path",
    "retrieve": "int", "sandbox": "str", "allow_network": "switch", "env": "strs", "pass_env": "strs",
    "memory_limit": "str", "disk_limit": "str", "policy": "paths", "hook": "str", "timeout_test": "float",
    "hook_scope": "str", "summary_tokens": "int", "rollback_threshold": "int", "max_retry": "int",
    "queues": "str", "rules": "path", "minimize": "switch", "stream_diff": "str", "metrics_port": "int",
}  # fmt: skip
SPECIAL_FLAGS = {"-p": "prompt", "--continue": "cont", "--allow-network": "allow_network",
                 "--no-network": "allow_network", "--minimize": "minimize", "--no-minimize": "minimize"}  # fmt: skip
SWITCH_OFF = {"--no-network", "--no-minimize"}
SWITCHES = ("allow_network", "minimize")
INT = re.compile(r"[+-]?[0-9]+")
FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


FLAGS: dict[str, str] = {
    **{f"--{n.replace('_', '-')}": n for n in {**OWN, **AGENT} if n not in ("prompt", "cont", *SWITCHES)},
    **SPECIAL_FLAGS,
}


@dataclass
class ChatArgs:
    repo: Path = Path(".")
    prompt: str | None = None
    output: Output = Output.text
    max_turns: int | None = None
    cont: bool = False
    resume: str | None = None
    auto_edit: bool = False
    agent: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(AGENT))


def _value(kind: str, text: str) -> Any:
    """`text` read as `kind`, exactly as click reads it; None when unsure (typer then decides)."""
    if kind in ("str", "strs"):
        return text
    if kind in ("path", "paths"):
        return Path(text) if text else None
    if kind == "int":
        return int(text) if INT.fullmatch(text) else None
    if kind == "float":
        return float(text) if FLOAT.fullmatch(text) else None
    if kind == "output":
        return Output(text) if text in Output.__members__ else None
    return None


def parse(argv: list[str]) -> ChatArgs | None:
    """chat's arguments, or None to leave them to typer."""
    args, seen = ChatArgs(), dict[str, Any]()
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        flag, eq, attached = token.partition("=") if token.startswith("--") else (token, "", "")
        name = FLAGS.get(flag)
        if name is None:
            return None  # --help, -h, a positional, `--`, a typo: typer's to answer
        kind = {**OWN, **AGENT}[name]
        if kind in ("flag", "switch"):
            if eq:
                return None
            seen[name] = flag not in SWITCH_OFF
            continue
        if eq:
            text = attached
        elif rest and (not rest[0].startswith("-") or kind in ("int", "float") and FLOAT.fullmatch(rest[0])):
            text = rest.pop(0)  # a negative number is a value, as in click
        else:
            return None
        value = _value(kind, text)
        if value is None:
            return None
        if kind in ("strs", "paths"):
            seen.setdefault(name, []).append(value)
        else:
            seen[name] = value  # given twice: the last wins, as in click
    for name, value in seen.items():
        if name in AGENT:
            args.agent[name] = value
        else:
            setattr(args, name, value)
    return args


def main_fast(argv: list[str]) -> None:
    """Run `devloop chat ARGV` and exit, or return when typer must read ARGV."""
    args = parse(argv)
    if args is None:
        return
    try:
        code = run_chat(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    except Exception as e:
        import typer  # errors.fail ends with typer.Exit; typer loads only when something failed

        if not isinstance(e, typer.Exit):
            raise
        code = e.exit_code
    sys.exit(code)


def echo(text: str, err: bool = False, nl: bool = True) -> None:
    out = sys.stderr if err else sys.stdout
    out.write(text + ("\n" if nl else ""))
    out.flush()


def load_chat_settings(agent: dict[str, Any], max_turns: int | None) -> RunSettings:
    """The settings chat runs with; raises SettingsFailed with the one line to show."""
    from devloop.chat.startup import SettingsFailed
    from devloop.config import ConfigError, RunSettings, load_settings

    given = {**agent, "max_iterations": max_turns}
    try:
        settings = load_settings(**{k: v for k, v in given.items() if k in RunSettings.model_fields})
    except ConfigError as e:
        raise SettingsFailed(str(e)) from None
    if "tool_format" not in settings.model_fields_set:  # not given anywhere: chat parses any format
        settings = settings.model_copy(update={"tool_format": "auto"})
    if "condense" not in settings.model_fields_set:  # a long conversation must keep fitting the window
        settings = settings.model_copy(update={"condense": True})
    if not settings.model:
        raise SettingsFailed("--model is required (or set DEVLOOP_MODEL / model in devloop.toml)")
    return settings


def run_chat(a: ChatArgs) -> int:
    """`devloop chat`; the exit code."""
    from devloop.chat.startup import DeferredSettings, SettingsFailed, model_hint
    from devloop.cli.errors import fail

    if a.cont and a.resume:
        fail("give --continue or --resume ID, not both")
    if not a.repo.is_dir():
        fail(f"--repo {a.repo}: not a directory")
    from devloop.chat.approvals import devloop_dir_problem

    if problem := devloop_dir_problem(a.repo):
        fail(problem)
    settings: RunSettings | DeferredSettings
    hint = model_hint(a.agent.get("model"))
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if a.prompt is None and a.resume != "list" and terminal and hint:
        settings = DeferredSettings(lambda: load_chat_settings(a.agent, a.max_turns), hint)
    else:
        try:
            settings = load_chat_settings(a.agent, a.max_turns)
        except SettingsFailed as e:
            fail(str(e))
    from devloop.chat.checkpoint import store_root

    if a.resume == "list":
        from devloop.chat.sessions import ChatSession, list_sessions

        for sid in list_sessions(store_root(a.repo)):
            try:
                s = ChatSession.load(store_root(a.repo), sid)
            except ValueError as e:
                echo(str(e), err=True)
                continue
            first = s.turns[0].prompt[:60] if s.turns else "(no turns)"
            echo(f"{sid}  {len(s.turns):3} turn(s)  {first}")
        return 0
    from devloop.chat.headless import open_session

    try:
        session, checkpoints = open_session(a.repo, a.cont, a.resume)
    except ValueError as e:
        fail(str(e))
    from devloop.chat.approvals import load as load_approvals

    approvals = load_approvals(a.repo, store_root(a.repo))  # the policy's "ask" rules: answered by these
    if a.prompt is None:
        from devloop.chat.commands import Chat
        from devloop.chat.slash import show_history
        from devloop.chat.ui import make_ui

        chat = None
        ui = make_ui(a.repo, store_root(a.repo) / "history", lambda: status_line(chat))
        model = settings.model
        ui.say(f"devloop chat · session {session.id} · {model} · /help for commands, /exit to leave")
        if approvals.warning:
            ui.say(f"warning: {approvals.warning}")
        if a.cont or a.resume:
            show_history(ui, session)
        chat = Chat(a.repo, settings, session, checkpoints, ui, approvals, auto_edit=a.auto_edit)
        try:
            chat.loop()
        except SettingsFailed as e:
            fail(str(e))
        return 0
    assert not isinstance(settings, DeferredSettings)
    if approvals.warning:
        echo(f"warning: {approvals.warning}", err=True)
    return run_headless(a, settings, session, checkpoints, approvals)


def run_headless(a: ChatArgs, settings: RunSettings, session: Any, checkpoints: Any, approvals: Any) -> int:
    from devloop.chat.context import turn_context
    from devloop.chat.headless import emit, final_json, run_turn, step_event
    from devloop.cli.errors import fail

    on_step = (lambda info: emit(step_event(info))) if a.output is Output.stream else None
    on_text: Callable[[str], None] | None = {
        Output.stream: lambda delta: emit({"type": "text", "delta": delta}),
        Output.text: lambda delta: echo(delta, err=True, nl=False),
    }.get(a.output)
    assert a.prompt is not None
    context, files = turn_context(a.repo, a.prompt, settings.model, checkpoints.gitdir)
    for problem in files.problems:
        echo(f"warning: {problem}", err=True)
    try:
        result = run_turn(
            a.repo,
            a.prompt,
            settings,
            session,
            checkpoints,
            on_step=on_step,
            on_text=on_text,
            ask=approvals.answer,
            on_warning=lambda w: echo(f"warning: {w}", err=True),
            context=context,
            images=files.images,
        )
    except ValueError as e:
        fail(str(e))
    if a.output is Output.text:
        echo(result.reason)
        echo(f"[{result.exit_status} · session {session.id} · turn {len(session.turns)}]", err=True)
    else:
        emit(final_json(result, session))
    return 0 if result.exit_status == "finished" else 1


def status_line(chat: Any) -> str:
    """The bottom bar: session, model, turns, tokens so far."""
    if chat is None:
        return ""
    turns = chat.session.turns
    used = sum(t.prompt_tokens + t.completion_tokens for t in turns)
    return f"{chat.model_name} · session {chat.session.id} · {len(turns)} turn(s) · {used:,} tokens"
