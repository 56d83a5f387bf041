"""The interactive chat: each line a turn for the agent, or a slash command (devloop.chat.slash: the
built-in ones, and the project's own prompts; a built-in name always wins over a file of the same name).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.chat.approvals import Approvals, ChatAsker
from devloop.chat.checkpoint import Checkpoints, store_root
from devloop.chat.sessions import ChatSession
from devloop.chat.slash import SlashCommands
from devloop.chat.startup import DeferredSettings, SettingsFailed
from devloop.chat.ui import PlainUI

# The repository's state, the tree's files (safefs) and the commands' helpers load with the first turn or
# command (or the warm-up thread), not before the first prompt.
if TYPE_CHECKING:  # loaded with the first turn (see headless), not before the first prompt
    from devloop.agent import StepInfo
    from devloop.config import RunSettings
    from devloop.types import ToolCall


class Chat(SlashCommands):
    def __init__(self, repo: Path, settings: RunSettings | DeferredSettings, session: ChatSession,
                 checkpoints: Checkpoints, ui: PlainUI, approvals: Approvals, *, auto_edit: bool = False) -> None:  # fmt: skip
        self.repo, self._settings, self.session, self.checkpoints = (
            repo.resolve(),
            settings,
            session,
            checkpoints,
        )
        self.ui, self.auto_edit = ui, auto_edit
        self.store = store_root(repo)
        self.asker = ChatAsker(approvals, self.repo, self.store, ui.choose, ui.say, self.review_edit)
        if isinstance(settings, DeferredSettings):
            settings.on_failure = ui.abort  # the prompt the user is at gives way to the error
        self._warming: threading.Thread | None = None

    @property
    def settings(self) -> RunSettings:
        """The settings, once validated (raises SettingsFailed when they cannot be)."""
        if isinstance(self._settings, DeferredSettings):
            self._settings = self._settings.get()
        return self._settings

    @settings.setter
    def settings(self, value: RunSettings) -> None:
        self._settings = value

    @property
    def model_name(self) -> str:
        """The model, without waiting for the settings (the bottom bar is drawn meanwhile)."""
        s = self._settings
        return s.model if not isinstance(s, DeferredSettings) else (s.ready or s).model

    # -- the loop ---------------------------------------------------------------------------------

    def loop(self) -> None:
        """Lines until /exit or EOF. Raises SettingsFailed when deferred settings turn out bad."""
        self.ui.after_first_prompt(self.warm_up)
        try:
            while True:
                try:
                    line = self.ui.read().strip()
                except EOFError:
                    return
                if not line:
                    continue
                if line.startswith("/"):
                    if self.command(line) == "exit":
                        return
                    continue
                self.turn(line)
        finally:
            # The interpreter must not shut down under a thread that is importing modules: that aborts
            # the process (seen as SIGSEGV or "exception not rethrown") when /exit comes at once.
            if self._warming is not None:
                self._warming.join(timeout=30)

    def warm_up(self) -> None:
        """Once the prompt is up: validate the settings, then load what the first turn needs, while the
        user types."""

        def work() -> None:
            if isinstance(self._settings, DeferredSettings):
                try:
                    self._settings.get()
                except SettingsFailed:
                    return  # ui.abort has the prompt give way
            warm_up()

        self._warming = threading.Thread(target=work, daemon=True, name="devloop-warm-up")
        self._warming.start()

    def command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        builtin: dict[str, Callable[[str], str | None]] = {
            "/help": self.help, "/model": self.model, "/resume": self.resume, "/rewind": self.rewind,
            "/undo": self.undo, "/diff": self.diff, "/commit": self.commit, "/status": self.status,
            "/tokens": self.tokens, "/clear": self.clear, "/compact": self.compact,
        }  # fmt: skip
        if name in ("/exit", "/quit"):
            return "exit"
        if name in builtin:
            return builtin[name](arg)
        custom = self.custom_prompt(name[1:], arg)
        if custom:
            self.turn(custom)
        elif custom is None:
            self.ui.say(f"{name}: no such command (/help lists them)")
        return None

    # -- a turn -----------------------------------------------------------------------------------

    def context(self) -> str:
        from devloop.chat.context import git_state, instructions

        parts = [instructions(self.repo).text(), git_state(self.repo, self.checkpoints.gitdir).text()]
        return "\n\n".join(p for p in parts if p)

    def turn(self, prompt: str) -> None:
        from devloop.chat.context import turn_context

        context, files = turn_context(self.repo, prompt, self.settings.model, self.checkpoints.gitdir)
        for problem in files.problems:
            self.ui.say(problem, style="yellow")
        if files.names:
            self.ui.say("attached: " + ", ".join(files.names), style="dim")
        n = len(self.session.turns) + 1
        from devloop.chat.headless import run_turn

        cancel = threading.Event()

        def shown(delta: str) -> None:  # an abandoned reply may still be arriving: not shown
            if not cancel.is_set():
                self.ui.stream(delta)

        def work() -> Any:
            return run_turn(self.repo, prompt, self.settings, self.session, self.checkpoints, ask=self.asker,
                            on_text=shown, on_step=self.on_step, context=context, images=files.images,
                            interactive=True, on_warning=lambda w: self.ui.say(f"warning: {w}", style="yellow"),
                            cancel=cancel)  # fmt: skip

        try:
            result = self.ui.run(work, cancel.set)
        except ValueError as e:  # a setting or policy file the turn could not start with
            self.ui.say(str(e), style="red")
            return
        self.ui.end_stream()
        if result.exit_status == "finished":
            self.ui.markdown(result.reason)
        elif result.exit_status == "interrupted":
            self.ui.say(
                "interrupted: the turn is saved as it stood (/undo takes its edits back)", style="yellow"
            )
        else:
            self.ui.say(result.reason, style="red")
        tokens = result.prompt_tokens + result.completion_tokens
        self.ui.say(f"[{result.exit_status} · turn {n} · {tokens:,} tokens]", style="dim")

    def on_step(self, info: StepInfo) -> None:
        self.ui.end_stream()
        for call, obs in zip(info.calls, info.observations, strict=False):
            if call.name == "finish":
                continue
            args = call.arguments if isinstance(call.arguments, dict) else {}
            what = (f"$ {args.get('command')}" if call.name == "execute_bash"
                    else f"{call.name} {args.get('command', '')} {args.get('path', '')}".rstrip())  # fmt: skip
            first = obs.text.strip().splitlines()[:3]
            self.ui.say(f"· {what}", style="bold")
            if first:
                self.ui.say(
                    "  " + "\n  ".join(line[:160] for line in first), style="red" if obs.is_error else "dim"
                )
        if info.format_error:
            self.ui.say(f"· format error: {info.format_error[:200]}", style="yellow")

    def review_edit(self, call: ToolCall, auto: bool = False) -> bool:
        """An editor write shown as a diff first; accept / reject / edit (in $EDITOR)."""
        from devloop.chat.preview import guarded, propose, rewrite
        from devloop.safefs import EscapeError

        try:
            proposed = propose(call, self.repo)
        except EscapeError:
            self.ui.say(f"refused: {call.arguments.get('path')} leads out of the repository", style="red")
            return False
        if proposed is None:
            return True  # a view, or an edit the editor will refuse and explain to the model
        if guarded(proposed.rel):
            self.ui.say(f"refused: the agent may not edit {proposed.rel}", style="red")
            return False
        self.ui.diff(proposed.diff() or f"(no change to {proposed.rel})\n")
        if auto or self.auto_edit:
            return True
        answer = self.ui.choose("apply this edit?", {"y": "accept", "n": "reject", "e": "edit it first"})
        if answer == "e":
            text = self.ui.edit_text(proposed.after, Path(proposed.rel).suffix)
            rewrite(call, proposed, text)
            self.ui.say(f"applying your version of {proposed.rel}", style="dim")
        return answer != "n"


def warm_up() -> None:
    """Load what the first turn needs (the agent, the openai client, bashlex) while the user types."""
    import importlib

    for name in (
        "devloop.session",
        "devloop.chat.streaming",
        "devloop.policy.prefix",
        "devloop.chat.preview",
        "devloop.chat.context",
        "devloop.chat.repl",
        "rich.markdown",
    ):
        try:
            importlib.import_module(name)
        except Exception:  # the turn will report it
            return
