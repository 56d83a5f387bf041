"""The person at the terminal, for `devloop run`: who answers the command policy's "ask" rules."""

from __future__ import annotations

import sys
from typing import Any


def terminal_asker(console: Any) -> Any:
    """A TerminalAsker reading answers from stdin when stdin is a terminal, else None (a batch run:
    "ask" rules deny). The call is shown with control characters made visible and markup escaped."""
    if not sys.stdin.isatty():
        return None
    from rich.markup import escape

    from devloop.cli.safe_text import shown
    from devloop.policy.ask import TerminalAsker

    return TerminalAsker(
        read=lambda prompt: console.input(f"[bold yellow]{escape(prompt)}[/]"),
        show=lambda text: console.print(f"[yellow]{escape(shown(text))}[/]", soft_wrap=True),
    )
