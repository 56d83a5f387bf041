"""Policy rules and their evaluation: which tool calls are allowed, need a person's approval, or are denied.

Evaluation: rules are tried in order (project file, then user file, then the built-in defaults; within a
file, top to bottom) and the first rule that matches decides. No match allows the call. An "ask" rule
asks the person at the keyboard in interactive use and denies in batch runs, where no one can answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from devloop.policy.paths import writes_outside
from devloop.tools.bash import MAX_COMMAND_CHARS, BashTool, oversized_command
from devloop.tools.mcp import MCP_KIND, is_mcp_tool
from devloop.types import ToolCall

Action = Literal["allow", "ask", "deny"]
Mode = Literal["any", "interactive", "batch"]
# Predicates a rule can use instead of (or besides) a pattern.
WHEN_CHOICES = ("writes-outside-workspace",)
ANY_TOOL = "*"

AskFn = Callable[[ToolCall, "Rule"], bool]


@dataclass(frozen=True)
class Rule:
    """One policy rule. `tool`: a tool name, "mcp" (every MCP tool) or "*". `pattern`: a Python regex searched in the call's
    subject (the command for execute_bash; otherwise the argument values joined by spaces). `when`: a
    predicate from WHEN_CHOICES. `mode`: whether the rule applies in interactive use, batch runs, or both.
    `source`: where the rule came from ("built-in default", or "FILE:LINE")."""

    action: Action
    tool: str = ANY_TOOL
    pattern: str | None = None
    when: str | None = None
    reason: str = ""
    mode: Mode = "any"
    source: str = "built-in default"
    label: str = ""  # a readable name for the match condition (built-in rules), shown instead of the regex
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None and self._regex is None:
            object.__setattr__(self, "_regex", re.compile(self.pattern))

    def matches(self, call: ToolCall, root: Path, *, interactive: bool) -> bool:
        """Whether this rule applies to `call` in a workspace at `root`."""
        if self.mode != "any" and (self.mode == "interactive") != interactive:
            return False
        mcp = is_mcp_tool(call.name)
        if self.tool == MCP_KIND:
            if not mcp:
                return False
        elif self.tool not in (ANY_TOOL, call.name):
            return False
        if mcp and self.tool == ANY_TOOL and self.action == "allow":
            return False  # an MCP tool runs outside the sandbox: only a rule naming it (or `mcp`) allows it
        if self._regex is not None and not self._regex.search(subject(call)):
            return False
        return not (self.when == "writes-outside-workspace" and writes_outside(call, root) is None)

    def describe(self) -> str:
        """The rule's match condition in words, for tables and messages."""
        if self.label:
            return self.label
        parts = [f"/{self.pattern}/"] if self.pattern else []
        if self.when:
            parts.append(self.when)
        return " and ".join(parts) or "any call"


@dataclass(frozen=True)
class Decision:
    """The verdict on one call: "allow" or "deny", the rule that decided (None: no rule matched), why."""

    action: Literal["allow", "deny"]
    rule: Rule | None
    reason: str

    def meta(self) -> dict[str, str | None]:
        """What a denial records in the observation's meta["policy"]."""
        rule = self.rule
        return {
            "action": self.action,
            "reason": self.reason,
            "rule_action": rule.action if rule else None,
            "match": rule.describe() if rule else None,
            "source": rule.source if rule else None,
        }


def subject(call: ToolCall) -> str:
    """The text a rule's pattern is searched in."""
    args = call.arguments if isinstance(call.arguments, dict) else {}
    command = args.get("command")
    if call.name == "execute_bash" and isinstance(command, str):
        return command
    return " ".join(v if isinstance(v, str) else json.dumps(v) for v in args.values())


# The size cap, as the rule a denial names: checked before any other, so no rule scans a huge command.
SIZE_LIMIT = Rule(
    action="deny",
    tool=BashTool.name,
    label=f"commands over {MAX_COMMAND_CHARS:,} characters",
    source="built-in limit",
)


class Policy:
    """An ordered list of rules; the first that matches decides. Commands over the bash tool's size cap
    are denied first (SIZE_LIMIT)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = list(rules)

    def first_match(self, call: ToolCall, root: Path, *, interactive: bool) -> Rule | None:
        return next((r for r in self.rules if r.matches(call, root, interactive=interactive)), None)

    def check(self, call: ToolCall, root: Path, *, interactive: bool, ask: AskFn | None = None) -> Decision:
        """Decide on `call`. An "ask" rule calls `ask(call, rule)` in interactive use (True allows) and
        denies in batch runs or when there is no one to ask."""
        command = call.arguments.get("command") if isinstance(call.arguments, dict) else None
        too_long = (
            oversized_command(command) if call.name == BashTool.name and isinstance(command, str) else None
        )
        if too_long:
            return Decision("deny", SIZE_LIMIT, too_long)
        rule = self.first_match(call, root, interactive=interactive)
        if rule is None:
            return Decision("allow", None, "no rule matched")
        why = rule.reason or f"the policy {rule.action}s {rule.describe()}"
        if rule.action == "allow":
            return Decision("allow", rule, why)
        if rule.action == "deny":
            return Decision("deny", rule, why)
        if not interactive:
            return Decision("deny", rule, f"{why} (needs a person's approval, and this is a batch run)")
        if ask is None:
            return Decision("deny", rule, f"{why} (needs a person's approval, and no one was asked)")
        if ask(call, rule):
            return Decision("allow", rule, f"{why} (approved)")
        return Decision("deny", rule, f"{why} (the user declined)")
