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
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.types import ToolCall

# bashlex (policy.prefix) loads at the first question, not before the first prompt


def prefix_words(rule: str) -> list[str] | None:
    from devloop.policy.prefix import prefix_words as words

    return words(rule)


def approved_by_prefix(command: str, rules: list[str]) -> str | None:
    from devloop.policy.prefix import approved_by_prefix as approved

    return approved(command, rules)


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


def devloop_dir_problem(repo: Path) -> str | None:
    """Why the repository's `.devloop` cannot be used, or None. It holds the approvals and the project's
    commands, and the sandbox binds it read-only; a link there would be followed by the host's reads and
    writes, to wherever it leads, and could not be bound (the agent could write through it)."""
    path = repo / ".devloop"
    if path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return (f"{path} is a symbolic link (to {target}): devloop chat does not follow it (approvals and "
                "commands would be read and written wherever it leads, and the agent could write through it); "
                "make .devloop a directory of the repository")  # fmt: skip
    if path.exists() and not path.is_dir():
        return f"{path} is not a directory: devloop chat keeps approvals and commands there"
    return None


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
    # a rule that is not one plain command approves nothing (approved_by_prefix checks each on use)
    commands = [c for c in table.get("commands") or [] if isinstance(c, str)]
    return Approvals(tools, commands)


def policy_bytes(repo: Path) -> bytes | None:
    return file_bytes(policy_file(repo))


def keep_policy_file(repo: Path, store: Path, before: bytes | None) -> str:
    """After a turn: a .devloop/policy.toml the model wrote (neither what was there nor what chat sealed)
    is put back as it was, since `devloop run` and the next turn read its rules; a warning, or ""."""
    if problem := devloop_dir_problem(repo):  # made a link during the turn: nothing through it
        return f"{problem}; it changed during the turn, not by devloop chat"
    now = policy_bytes(repo)
    seal = store / "policy.sha256"
    sealed = seal.read_text().strip() if seal.is_file() else ""
    if now == before or (now is not None and now != b"<a symbolic link>" and _digest(now) == sealed):
        return ""
    path = policy_file(repo)
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        if before is not None and before != b"<a symbolic link>":
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(before)
    except OSError as e:
        return f"{path}: changed during the turn, not by devloop chat, and could not be put back ({e})"
    return f"{path}: changed during the turn, not by devloop chat: put back as it was"


def keep_file(path: Path, before: bytes | None) -> str:
    """After a turn: `path` (a file devloop reads its settings from, which chat itself never writes) put
    back as it was if the turn changed it; a warning, or "". The project's devloop.toml chooses the
    sandbox and the server: one the model wrote would take effect in the user's next session."""
    now = b"<a symbolic link>" if path.is_symlink() else (path.read_bytes() if path.is_file() else None)
    if now == before:
        return ""
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        if before is not None and before != b"<a symbolic link>":
            path.write_bytes(before)
    except OSError as e:
        return f"{path}: changed during the turn, and could not be put back ({e})"
    return f"{path}: changed during the turn: put back as it was (devloop reads its settings from it)"


def file_bytes(path: Path) -> bytes | None:
    if path.is_symlink():
        return b"<a symbolic link>"
    try:
        return path.read_bytes()
    except OSError:
        return None


def save(approvals: Approvals, repo: Path, store: Path) -> Path:
    """Write the project's approvals and seal them; json.dumps quotes a TOML basic string correctly."""
    lines = ["# Written by devloop chat; edit through it (a hand edit is ignored).", "[chat]",
             "commands = [" + ", ".join(json.dumps(c) for c in approvals.commands) + "]", "", "[chat.tools]",
             *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(approvals.tools.items()))]  # fmt: skip
    data = ("\n".join(lines) + "\n").encode()
    if problem := devloop_dir_problem(repo):
        raise ValueError(problem)
    path = policy_file(repo)
    path.parent.mkdir(exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    store.mkdir(parents=True, exist_ok=True)
    (store / "policy.sha256").write_text(_digest(data) + "\n")
    return path


# Programs whose second word names what they do (`git status`, `npm test`): a standing approval covers
# that pair; for any other program its first word.
_SUBCOMMANDS = {"git", "npm", "pnpm", "yarn", "uv", "pip", "pip3", "cargo", "go", "docker", "make", "poetry",
                "conda", "kubectl", "dotnet", "mvn", "gradle", "bundle", "rake", "just", "hatch", "tox"}  # fmt: skip


def standing_prefix(command: str) -> str | None:
    """The prefix "always" approves for `command`: its program (and subcommand), or None when the command
    is not one plain simple command (a pipeline, a redirection...), which no prefix rule may cover."""
    words = prefix_words(command)
    if not words:
        return None
    keep = 2 if words[0] in _SUBCOMMANDS and len(words) > 1 and not words[1].startswith("-") else 1
    prefix = " ".join(words[:keep])
    return prefix if prefix_words(prefix) == words[:keep] else None


class ChatAsker:
    """The policy's `ask(call, rule)` in an interactive chat: standing approvals first (the project's,
    then this session's), else the user answers y / n / s (always, this session) / p (always, this
    project: written to .devloop/policy.toml). Editor writes go to `edit` (the diff preview) instead."""

    def __init__(self, project: Approvals, repo: Path, store: Path, choose: Any, show: Any,
                 edit: Any = None) -> None:  # fmt: skip
        self.project, self.session = project, Approvals()
        self.repo, self.store = repo, store
        self.choose, self.show, self.edit = choose, show, edit

    def standing(self, call: ToolCall) -> bool | None:
        """True / False when a standing approval decides, None when the user must be asked."""
        for approvals in (self.project, self.session):
            if approvals.tools.get(call.name) in ("always", "never"):
                return approvals.tools[call.name] == "always"
        if self.project.answer(call) or self.session.answer(call):
            return True
        return None

    def __call__(self, call: ToolCall, rule: Any) -> bool:
        if call.name == "str_replace_editor" and self.edit is not None:
            decided = self.standing(call)
            return self.edit(call, auto=decided is True) if decided is not False else False
        decided = self.standing(call)
        if decided is not None:
            return decided
        command = call.arguments.get("command") if call.name == "execute_bash" else None
        why = getattr(rule, "reason", "") or "the policy asks first"
        what = (
            f"$ {command}" if isinstance(command, str) else f"{call.name} {json.dumps(call.arguments)[:300]}"
        )
        detail = f"{why}\n  {what}"
        prefix = standing_prefix(command) if isinstance(command, str) else call.name
        choices = {"y": "yes", "n": "no"}
        if prefix:
            label = f"`{prefix}`" if isinstance(command, str) else call.name
            choices |= {"s": f"always {label} this session", "p": f"always {label} in this project"}
        elif isinstance(command, str):
            detail += "\n  (not one plain command: it can only be approved once)"
        answer = self.choose("run it?", choices, detail=detail)
        if answer in ("s", "p") and prefix:
            target = self.session if answer == "s" else self.project
            if isinstance(command, str):
                target.add_command(prefix)
            else:
                target.tools[call.name] = "always"
            if answer == "p":
                try:
                    self.show(f"  saved to {save(self.project, self.repo, self.store)}")
                except ValueError as e:  # approved for this session only, then
                    self.show(f"  not saved for the project: {e}")
        return answer != "n"
