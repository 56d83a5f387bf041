"""Asking the person at the terminal about a call that an "ask" rule matched: y / n / always.

Used by `devloop run` when its stdin is a terminal; a run without one (eval, CI, a pipe) has no asker,
so "ask" rules deny there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devloop.policy.rules import Rule, subject
from devloop.types import ToolCall

ANSWERS = {"y": "yes", "yes": "yes", "n": "no", "no": "no", "": "no", "a": "always", "always": "always"}


class TerminalAsker:
    """`ask(call, rule)` for GatedToolbox: prints the call and the rule's reason, reads an answer.

    y runs this call; n (or Enter, or end of input) refuses it; a runs it and every later call the same
    rule matches in this run, without asking again. Anything else asks again. `read(prompt)` reads one
    line; `show(text)` prints text the model wrote in part (the caller makes control characters visible)."""

    def __init__(self, read: Callable[[str], str], show: Callable[[str], None]) -> None:
        self.read = read
        self.show = show
        self.always: set[Rule] = set()
        self._lock = threading.Lock()  # one question at a time

    def __call__(self, call: ToolCall, rule: Rule) -> bool:
        with self._lock:
            if rule in self.always:
                return True
            why = rule.reason or f"the policy asks before {rule.describe()}"
            what = f"$ {subject(call)}" if call.name == "execute_bash" else f"{call.name} {subject(call)}"
            self.show(f"policy ({rule.source}): {why}\n  {what}")
            while True:
                try:
                    answer = ANSWERS.get(
                        self.read("run it? [y]es / [n]o / [a]lways for this rule: ").strip().lower()
                    )
                except EOFError:
                    answer = "no"
                if answer == "always":
                    self.always.add(rule)
                if answer is not None:
                    return answer != "no"
