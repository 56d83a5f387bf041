"""One line per agent step: step number, action, tokens, elapsed."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from devloop.agent import StepInfo
from devloop.cli.safe_text import shown
from devloop.types import ToolCall


def describe_call(call: ToolCall, width: int = 70) -> str:
    """A short human label for a call: `bash: pytest -q`, `edit str_replace src/x.py`."""
    args = call.arguments
    if call.name == "execute_bash":
        text = "bash: " + " ".join(str(args.get("command", "")).split())
    elif call.name == "str_replace_editor":
        text = f"edit {args.get('command', '?')} {args.get('path', '')}"
    elif call.name == "finish":
        text = "finish"
    elif call.name == "think":
        text = "think"
    else:
        text = call.name
    return text if len(text) <= width else text[: width - 1] + "…"


class StepPrinter:
    def __init__(self, console: Console, prefix: str = ""):
        self.console, self.prefix = console, prefix

    def __call__(self, info: StepInfo) -> None:
        if info.format_error:
            action = f"[red]format error[/] {escape(shown(info.format_error.splitlines()[0][:60]))}"
        else:
            action = escape(shown("; ".join(describe_call(c) for c in info.calls) or "(no action)"))
            if any(o.is_error for o in info.observations):
                action += " [yellow](error)[/]"
        tokens = f"{info.usage.prompt_tokens:,}+{info.usage.completion_tokens:,} tok"
        self.console.print(
            f"{self.prefix}[dim]step {info.step:>3}[/]  {action}  [dim]· {tokens} · {info.elapsed_s:.1f} s[/]"
        )
