"""The chat's slash commands: /help /model /resume /rewind /diff /commit /undo /status /tokens /clear
/compact, and the project's own prompts, `.devloop/commands/NAME.md` (run as `/NAME [ARGS]`; `$ARGUMENTS`
in the file is replaced by ARGS). Chat (devloop.chat.commands) has them and dispatches a line to them.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import TYPE_CHECKING

from devloop.chat.checkpoint import Checkpoints
from devloop.chat.sessions import ChatSession, list_sessions

if TYPE_CHECKING:
    from devloop.chat.approvals import ChatAsker
    from devloop.chat.ui import PlainUI
    from devloop.config import RunSettings

HELP = {
    "/help": "this list",
    "/model [NAME]": "show the model, or switch to PROVIDER/NAME",
    "/resume [ID]": "list this repository's sessions, or go on with one",
    "/rewind [N]": "files and conversation back to before turn N (default: the last)",
    "/undo": "undo the last turn (its edits and its place in the conversation)",
    "/diff [N]": "what changed in the tree since before turn N (default: 1)",
    "/commit [MESSAGE]": "commit the tree on your branch (no MESSAGE: the model drafts one for you to approve)",
    "/status": "session, model, repository state, AGENTS.md files, approvals",
    "/tokens": "tokens per turn and in all",
    "/clear": "start a new conversation (files stay as they are)",
    "/compact": "summarise the earlier turns to shrink the context (/compact what to keep)",
    "/exit": "leave (also Ctrl-D)",
}
COMMAND_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DIFF_FOR_MESSAGE = 24_000


def context_tokens(text: str) -> int:
    """Roughly how many tokens `text` is (4 characters a token: the chat shows sizes, bills nothing)."""
    return (len(text.encode()) + 3) // 4


class SlashCommands:
    """The commands, on the chat's state (declared here, kept by Chat)."""

    repo: Path
    store: Path
    session: ChatSession
    checkpoints: Checkpoints
    ui: PlainUI
    asker: ChatAsker
    auto_edit: bool
    settings: RunSettings

    def context(self) -> str:
        raise NotImplementedError

    def help(self, _: str) -> None:
        width = max(map(len, HELP))
        self.ui.say("\n".join(f"{k.ljust(width)}  {v}" for k, v in HELP.items()))
        custom = self.custom_names()
        if custom:
            self.ui.say("project commands (.devloop/commands): " + " ".join(f"/{c}" for c in custom))

    def model(self, arg: str) -> None:
        if not arg:
            self.ui.say(f"model: {self.settings.model}")
            return
        if "/" not in arg:
            self.ui.say(f"/model {arg}: give PROVIDER/NAME (openai/..., mistral/..., scripted/...)")
            return
        self.settings = self.settings.model_copy(update={"model": arg})
        self.ui.say(f"model: {arg} (from the next turn)")

    def resume(self, arg: str) -> None:
        ids = list_sessions(self.store)
        if not arg:
            for sid in ids:
                try:
                    s = ChatSession.load(self.store, sid)
                except ValueError as e:
                    self.ui.say(str(e))
                    continue
                first = s.turns[0].prompt[:60] if s.turns else "(no turns)"
                mark = "*" if sid == self.session.id else " "
                self.ui.say(f"{mark} {sid}  {len(s.turns):3} turn(s)  {first}")
            return
        if arg not in ids:
            self.ui.say(f"/resume {arg}: no such session (known: {', '.join(ids) or 'none'})")
            return
        self.session = ChatSession.load(self.store, arg)
        self.checkpoints = Checkpoints(self.repo, self.store / "git", self.session.id)
        show_history(self.ui, self.session)

    def rewind(self, arg: str) -> None:
        from devloop.chat.repl import rewind

        arg = arg or str(len(self.session.turns))
        self.ui.say(
            rewind(self.session, self.checkpoints, int(arg))
            if arg.isdigit()
            else "/rewind N: N a turn number"
        )

    def undo(self, _: str) -> None:
        if not self.session.turns:
            self.ui.say("/undo: no turn to undo")
            return
        from devloop.chat.repl import rewind

        n = len(self.session.turns)
        rewind(self.session, self.checkpoints, n)
        self.ui.say(f"undid turn {n}: its edits and its place in the conversation")

    def diff(self, arg: str) -> None:
        from devloop.chat.checkpoint import diff_since

        turn = int(arg) if arg.isdigit() else 1
        if turn not in self.checkpoints.turns():
            self.ui.say(f"/diff: no checkpoint before turn {turn} in this session")
            return
        self.ui.diff(diff_since(self.checkpoints, turn) or f"(no changes since before turn {turn})\n")

    def commit(self, arg: str) -> None:
        from devloop.chat.checkpoint import diff_since
        from devloop.chat.repl import commit_now

        message = arg
        if not message:
            diff = diff_since(self.checkpoints, 1) if 1 in self.checkpoints.turns() else ""
            message = self.draft_message(diff)
            if not message:
                return
            self.ui.say("commit message (drafted by the model):", style="bold")
            self.ui.say(message)
            answer = self.ui.choose("commit with it?", {"y": "commit", "e": "edit it first", "n": "cancel"})
            if answer == "n":
                self.ui.say("/commit: cancelled")
                return
            if answer == "e":
                message = self.ui.edit_text(message, ".txt").strip()
                if not message:
                    self.ui.say("/commit: empty message, cancelled")
                    return
        self.ui.say(commit_now(self.repo, self.checkpoints, message, len(self.session.turns)))

    def draft_message(self, diff: str) -> str:
        from devloop.session import Session

        if not diff.strip():
            return f"devloop chat: {len(self.session.turns)} turn(s)"
        try:
            prepared = Session.prepare(self.settings)
            messages = [
                {"role": "system", "content": "You write git commit messages: a subject line of at most 72 "
                 "characters in the imperative, a blank line, then a short body saying why. Reply with the "
                 "message only."},
                {"role": "user", "content": "Requests in this session:\n" + "\n".join(
                    f"- {t.prompt}" for t in self.session.turns) + f"\n\nThe diff:\n{diff[:MAX_DIFF_FOR_MESSAGE]}"},
            ]  # fmt: skip
            try:
                reply = prepared.model.complete(messages, None, prepared.params)
            finally:
                prepared.model.close()
        except Exception as e:  # a model error is one line for the user, never a traceback
            self.ui.say(f"/commit: the model could not draft a message ({str(e).splitlines()[0]}); "
                        "give one: /commit MESSAGE")  # fmt: skip
            return ""
        text = (reply.content or "").strip().strip("`").strip()
        if not text:
            self.ui.say("/commit: the model drafted an empty message; give one: /commit MESSAGE")
        return text

    def status(self, _: str) -> None:
        from devloop.chat.context import git_state, instructions

        git = git_state(self.repo, self.checkpoints.gitdir)
        found = instructions(self.repo)
        a = self.asker
        lines = [
            f"session   {self.session.id} · {len(self.session.turns)} turn(s)",
            f"model     {self.settings.model} · tool format {self.settings.tool_format}",
            f"repo      {self.repo} · branch {git.branch or '(detached or not git)'} · {len(git.dirty)} changed file(s)",
            f"context   ≈{context_tokens(self.session.history() + self.context()):,} tokens before your next message",
            "AGENTS.md " + (", ".join(w for w, _ in found.files) or "(none)"),
            f"approvals project: {', '.join(a.project.commands) or '-'} {a.project.tools or ''}".rstrip(),
            f"          session: {', '.join(a.session.commands) or '-'} {a.session.tools or ''}".rstrip(),
            f"edits     {'applied without asking (--auto-edit)' if self.auto_edit else 'shown as a diff, then asked'}",
        ]  # fmt: skip
        self.ui.say("\n".join(lines))

    def tokens(self, _: str) -> None:
        if not self.session.turns:
            self.ui.say("no turns yet")
            return
        rows = [f"turn {t.turn:3}  prompt {t.prompt_tokens:9,}  completion {t.completion_tokens:7,}  {t.prompt[:40]}"
                for t in self.session.turns]  # fmt: skip
        p = sum(t.prompt_tokens for t in self.session.turns)
        c = sum(t.completion_tokens for t in self.session.turns)
        self.ui.say("\n".join([*rows, f"total     prompt {p:9,}  completion {c:7,}"]))

    def clear(self, _: str) -> None:
        old = self.session.id
        self.session = ChatSession.new(self.store, self.repo)
        self.checkpoints = Checkpoints(self.repo, self.store / "git", self.session.id)
        self.ui.say(f"new conversation {self.session.id} (files as they are; /resume {old} goes back)")

    def compact(self, arg: str) -> None:
        from devloop.chat.compaction import compact_session

        if len(self.session.turns) - self.session.summarised < 2:
            self.ui.say("/compact: nothing to summarise yet (the last turn is always kept as it is)")
            return
        try:
            outcome = self.ui.run(lambda: compact_session(self.session, self.settings, arg or None))
        except ValueError as e:
            self.ui.say(f"/compact: {e}", style="red")
            return
        self.ui.say(outcome)

    # -- project commands -------------------------------------------------------------------------

    def custom_names(self) -> list[str]:
        from devloop.safefs import SafeFSError, SafeRoot

        try:
            with SafeRoot(self.repo) as root:
                entries = root.listdir(".devloop/commands", shown=".devloop/commands")
        except (SafeFSError, OSError):
            return []
        return [
            e.name[:-3] for e in entries if e.name.endswith(".md") and COMMAND_NAME.fullmatch(e.name[:-3])
        ]

    def custom_prompt(self, name: str, arg: str) -> str | None:
        if not COMMAND_NAME.fullmatch(name):
            return None
        from devloop.safefs import SafeFSError, read_without_links

        rel = f".devloop/commands/{name}.md"
        try:  # the file the user put there: no link followed (one could lead to a file the model wrote)
            text = read_without_links(self.repo, rel, 64_000).decode("utf-8", "replace")
        except SafeFSError as e:
            if e.errno == errno.ELOOP:
                self.ui.say(f"/{name}: {rel} goes through a symbolic link: not run", style="red")
                return ""
            return None
        except OSError:
            return None
        return (
            text.replace("$ARGUMENTS", arg) if "$ARGUMENTS" in text else f"{text.rstrip()}\n\n{arg}".rstrip()
        )


def show_history(ui: PlainUI, session: ChatSession) -> None:
    """A resumed session: its turns and the size of the context the next message goes with."""
    ui.say(f"session {session.id} · {len(session.turns)} turn(s)", style="bold")
    for t in session.turns:
        ui.say(f"> {t.prompt}", style="bold")
        ui.say(f"  {t.message}  [{t.exit_status}]", style="dim")
    used = sum(t.prompt_tokens + t.completion_tokens for t in session.turns)
    ui.say(f"context ≈{context_tokens(session.history()):,} tokens of history · {used:,} tokens used so far",
           style="dim")  # fmt: skip
