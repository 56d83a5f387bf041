"""Standing approvals for chat: per tool `ask | always | never`, and command prefixes (policy.prefix).

"Always for this project" is written to the repository's `.devloop/policy.toml`:

    [chat.tools]
    execute_bash = "ask"
    [chat]
    commands = ["git status", "pytest"]

The model works in this tree and could write that file itself, so it is read back only when it is the
file devloop wrote: its SHA-256 is kept in the user data store (checkpoint.store_root) on every write,
and a file that differs is ignored, with a warning naming it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.policy.prefix import approved_by_prefix, prefix_words
from devloop.types import ToolCall

CHOICES = ("ask", "always", "never")


@dataclass
class Approvals:
    tools: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    warning: str = ""

    def answer(self, call: ToolCall, _rule: Any = None) -> bool:
        """Whether a call the policy would ask about is approved without asking."""
        choice = self.tools.get(call.name, "ask")
        if choice != "ask":
            return choice == "always"
        command = call.arguments.get("command") if call.name == "execute_bash" else None
        return isinstance(command, str) and approved_by_prefix(command, self.commands) is not None

    def add_command(self, prefix: str) -> None:
        if prefix_words(prefix) is None:
            raise ValueError(f"{prefix!r} is not a plain command: it cannot be a prefix rule")
        if prefix not in self.commands:
            self.commands.append(prefix)


def policy_file(repo: Path) -> Path:
    return repo / ".devloop" / "policy.toml"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(repo: Path, store: Path) -> Approvals:
    path = policy_file(repo)
    if path.is_symlink() or not path.is_file():
        return Approvals()
    data = path.read_bytes()
    seal = store / "policy.sha256"
    if not seal.is_file() or seal.read_text().strip() != _digest(data):
        return Approvals(warning=f"{path}: not written by devloop chat (changed since): ignored")
    try:
        table = tomllib.loads(data.decode()).get("chat", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        return Approvals(warning=f"{path}: {e}: ignored")
    tools = {k: v for k, v in (table.get("tools") or {}).items() if v in CHOICES}
    commands = [c for c in table.get("commands") or [] if isinstance(c, str) and prefix_words(c)]
    return Approvals(tools, commands)


def save(approvals: Approvals, repo: Path, store: Path) -> Path:
    """Write the project's approvals and seal them; json.dumps quotes a TOML basic string correctly."""
    lines = ["# Written by devloop chat; edit through it (a hand edit is ignored).", "[chat]",
             "commands = [" + ", ".join(json.dumps(c) for c in approvals.commands) + "]", "", "[chat.tools]",
             *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(approvals.tools.items()))]  # fmt: skip
    data = ("\n".join(lines) + "\n").encode()
    path = policy_file(repo)
    path.parent.mkdir(exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    store.mkdir(parents=True, exist_ok=True)
    (store / "policy.sha256").write_text(_digest(data) + "\n")
    return path
