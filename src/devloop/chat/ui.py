"""The chat's terminal: prompt_toolkit for input, rich for output; a plain stdin/stdout one without a tty.

While a turn runs, the agent works in a thread and the terminal stays live: the reply streams above the
prompt (whole lines printed, the line being written shown in the bottom bar), the user can type the next
message meanwhile (it is sent when the turn ends), and a question from the turn (an approval, an edit's
diff) takes the prompt over, then gives the typed text back. Ctrl-C interrupts the turn (the model's
reply or the running command); at an empty prompt, a second Ctrl-C (or Ctrl-D) leaves.

Everything a model or server wrote is printed through `shown` (control characters made visible: an
escape sequence in a reply must not reach the user's terminal) and never as rich markup.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# C0 controls but tab and newline, DEL, and the C1 range (some terminals act on 8-bit CSI/OSC too).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: object) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


@contextlib.contextmanager
def patched_stdout() -> Iterator[None]:
    """What is printed (by any thread) lands above the prompt, which is drawn again below it. As
    prompt_toolkit's patch_stdout, with writes batched 10 ms apart instead of 200, so that a streamed
    reply and the diff before a question show at once."""
    from prompt_toolkit.patch_stdout import StdoutProxy

    with StdoutProxy(sleep_between_writes=0.01, raw=True) as proxy:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = proxy  # type: ignore[assignment]
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


def choices_hint(choices: dict[str, str]) -> str:
    return "  ".join(f"[{k}] {v}" for k, v in choices.items())


def edit_in_editor(text: str, suffix: str = "") -> str:
    """`text` as the user left it in $VISUAL / $EDITOR (vi without either)."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="devloop-edit-") as tmp:
        path = Path(tmp) / f"edit{suffix}"
        path.write_text(text, encoding="utf-8")
        subprocess.run([*shlex.split(editor), str(path)], check=False)
        return path.read_text(encoding="utf-8", errors="replace")


class PlainUI:
    """Lines on stdin and stdout: pipes, scripts, tests without a terminal."""

    interactive = False

    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self._out = out or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self._midline = False

    def read(self, prompt: str = "> ") -> str:
        self.end_stream()
        return input(prompt)

    def say(self, text: str, style: str = "") -> None:
        self.end_stream()
        self._out(shown(text) + "\n")

    def markdown(self, text: str) -> None:
        self.say(text)

    def diff(self, text: str) -> None:
        self.say(text.rstrip("\n"))

    def stream(self, delta: str) -> None:
        self._out(shown(delta))
        self._midline = not delta.endswith("\n") if delta else self._midline

    def end_stream(self) -> None:
        if self._midline:
            self._out("\n")
            self._midline = False

    def choose(self, question: str, choices: dict[str, str], detail: str = "") -> str:
        """One of `choices`' keys; `detail` (what is asked about) shows just above the choices."""
        self.say(f"{detail}\n{choices_hint(choices)}" if detail else choices_hint(choices))
        while True:
            try:
                answer = self.read(f"{question} [{'/'.join(choices)}] ").strip().lower()
            except EOFError:
                return "n" if "n" in choices else next(iter(choices))
            if answer in choices:
                return answer

    def edit_text(self, text: str, suffix: str = "") -> str:
        return edit_in_editor(text, suffix)

    def run(self, work: Callable[[], T], on_interrupt: Callable[[], None] | None = None) -> T:
        # Ctrl-C is SIGINT here: KeyboardInterrupt in this thread, inside `work`, which ends the run
        return work()

    def after_first_prompt(self, then: Callable[[], None]) -> None:
        then()  # once the first prompt is on the screen: here, now

    def abort(self, error: BaseException) -> None:
        """From any thread: the prompt the user is at (or the next) raises `error`. (Not here: a line read
        from a pipe cannot be given up, so the chat validates its settings before the first.)"""


class TerminalUI(PlainUI):
    """prompt_toolkit line editing (history, @path completion) and rich rendering."""

    interactive = True

    def __init__(
        self, repo: Path, history: Path | None = None, status: Callable[[], str] | None = None
    ) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        from devloop.chat.completion import MentionCompleter

        super().__init__()
        self.status = status or (lambda: "")
        self.session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)) if history else InMemoryHistory(),
            completer=MentionCompleter(repo),
            complete_while_typing=True,
        )
        # while a turn runs: the same history and completion, its line erased when it steps aside
        self.ahead: PromptSession[str] = PromptSession(
            history=self.session.history, completer=self.session.completer, complete_while_typing=True,
            erase_when_done=True,
        )  # fmt: skip
        self.questions: PromptSession[str] = PromptSession()
        self._console: Any = None
        self.queued: list[str] = []
        self._typed = ""
        self._partial = ""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_interrupt: Callable[[], None] | None = None
        self._armed = False  # a Ctrl-C just now: another one at an empty prompt leaves
        self._first_prompt: list[Callable[[], None]] = []
        self._abort: BaseException | None = None
        self._reading: asyncio.AbstractEventLoop | None = None  # the loop of the prompt being read
        self._requests: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], concurrent.futures.Future[Any]]]

    # -- output (any thread) ----------------------------------------------------------------------

    @property
    def console(self) -> Any:
        """rich's Console, made at the first styled print (rich loads then, or in the warm-up thread,
        not before the first prompt)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=False, force_terminal=sys.stdout.isatty())
        return self._console

    def _print(self, *renderables: Any, style: str = "") -> None:
        self.console.print(*renderables, style=style or None, markup=False, highlight=False)

    def say(self, text: str, style: str = "") -> None:
        self.end_stream()
        if style or self._console is not None:
            self._print(shown(text), style=style)
        else:  # plain text before anything styled (the banner): no need for rich yet
            sys.stdout.write(shown(text) + "\n")
            sys.stdout.flush()

    def markdown(self, text: str) -> None:
        from rich.markdown import Markdown

        self.end_stream()
        self.console.print(Markdown(shown(text)))

    def diff(self, text: str) -> None:
        from rich.text import Text

        self.end_stream()
        out = Text()
        for line in shown(text).splitlines():
            style = ("bold" if line.startswith(("+++", "---")) else "green" if line.startswith("+")
                     else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")  # fmt: skip
            out.append(line + "\n", style=style)
        self.console.print(out, end="")

    def stream(self, delta: str) -> None:
        with self._lock:
            self._partial += delta
            done, sep, self._partial = self._partial.rpartition("\n")
        if sep:
            self._print(shown(done), style="italic")
        self._invalidate()

    def end_stream(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._print(shown(rest), style="italic")
            self._invalidate()

    def _invalidate(self) -> None:
        app = self.ahead.app
        if app.is_running:
            app.invalidate()

    def _toolbar(self) -> Any:
        from prompt_toolkit.formatted_text import FormattedText

        width = max(20, self.ahead.app.output.get_size().columns - 4)
        line = shown(self._partial)[-width:]
        return FormattedText([("", f"… {line}" if line else f"working · {self.status()}")])

    # -- input (main thread) ----------------------------------------------------------------------

    def read(self, prompt: str = "> ") -> str:
        self.end_stream()
        if self.queued:
            line = self.queued.pop(0)
            self.say(f"> {line}", style="bold")
            return line
        typed, self._typed = self._typed, ""
        with patched_stdout():
            while True:
                try:
                    line = self.session.prompt(
                        prompt, default=typed, bottom_toolbar=self.status, pre_run=self._prompt_started
                    )
                except KeyboardInterrupt:  # Ctrl-C clears the line, as in a shell; Ctrl-D (EOFError) ends
                    typed = ""
                    if self.session.default_buffer.text.strip():
                        self._armed = False
                        continue
                    if self._armed:
                        raise EOFError from None  # a second Ctrl-C at an empty prompt: leave
                    self._armed = True
                    self.say("(Ctrl-C again or Ctrl-D to leave)", style="dim")
                    continue
                finally:
                    with self._lock:
                        self._reading = None
                self._armed = False
                return line

    def after_first_prompt(self, then: Callable[[], None]) -> None:
        self._first_prompt.append(then)

    def _prompt_started(self) -> None:  # in the prompt's loop, before its drawing (which is synchronous)
        loop = asyncio.get_running_loop()
        while self._first_prompt:  # called after the drawing
            loop.call_soon(self._first_prompt.pop(0))
        with self._lock:
            self._reading = loop
            if self._abort is not None:
                loop.call_soon(self._give_way)

    def abort(self, error: BaseException) -> None:
        with self._lock:
            self._abort = error
            if self._reading is not None:
                self._reading.call_soon_threadsafe(self._give_way)

    def _give_way(self) -> None:
        app = self.session.app
        if self._abort is not None and app.is_running and app.future is not None and not app.future.done():
            app.exit(exception=self._abort)

    def choose(self, question: str, choices: dict[str, str], detail: str = "") -> str:
        async def ask() -> str:
            self.end_stream()
            # what is asked and the choices are part of the prompt, so they show with it: a print from
            # the turn's thread goes through patch_stdout's writer and may land after the prompt is drawn
            hint = f"{shown(detail)}\n{choices_hint(choices)}" if detail else choices_hint(choices)
            message = f"{hint}\n{question} [{'/'.join(choices)}] "
            while True:
                try:
                    answer = await self.questions.prompt_async(message)
                except KeyboardInterrupt:  # during a turn: no, and the turn is interrupted
                    self._interrupt()
                    return "n" if "n" in choices else next(iter(choices))
                except EOFError:
                    return "n" if "n" in choices else next(iter(choices))
                if answer.strip().lower() in choices:
                    return answer.strip().lower()

        return self._in_main(ask)

    def edit_text(self, text: str, suffix: str = "") -> str:
        async def edit() -> str:
            return edit_in_editor(text, suffix)

        return self._in_main(edit)

    def _in_main(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run the coroutine `make()` where the terminal is read: on the turn's loop when called from the
        turn's thread (the type-ahead prompt steps aside for it), else here."""
        if self._loop is None or threading.current_thread() is threading.main_thread():
            with patched_stdout():
                return asyncio.run(make())  # type: ignore[arg-type]
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._loop.call_soon_threadsafe(self._requests.put_nowait, (make, done))
        return done.result()

    def run(self, work: Callable[[], T], on_interrupt: Callable[[], None] | None = None) -> T:
        """`work()` in a thread, the terminal live meanwhile; Ctrl-C calls `on_interrupt` (which should
        make `work` end soon) and the prompt comes back when it has."""
        self._on_interrupt = on_interrupt
        with patched_stdout():
            try:
                return asyncio.run(self._run(work))
            finally:
                self._loop = self._on_interrupt = None
                self.end_stream()

    def _interrupt(self) -> None:
        if self._on_interrupt is None:
            self.say("(this cannot be interrupted: it ends by itself)", style="dim")
            return
        self._on_interrupt()
        self._on_interrupt = lambda: None  # said once
        self.say("interrupting…", style="yellow")

    async def _run(self, work: Callable[[], T]) -> T:
        self._loop = asyncio.get_running_loop()
        self._requests = asyncio.Queue()
        job = asyncio.ensure_future(asyncio.to_thread(work))
        while True:
            typing = asyncio.ensure_future(self._type_ahead())
            request = asyncio.ensure_future(self._requests.get())
            done, _ = await asyncio.wait({job, typing, request}, return_when=asyncio.FIRST_COMPLETED)
            if typing in done:
                line = typing.result()
                if line is None:
                    line = ""
                    self._interrupt()
                if line.strip():
                    self.queued.append(line)
                    self.say(f"(queued for after this turn: {line})", style="dim")
                self._typed = ""
            else:
                await self._step_aside(typing)
            if request in done:
                make, answer = request.result()
                try:
                    answer.set_result(await make())
                except BaseException as e:  # handed to the turn's thread
                    answer.set_exception(e)
            else:
                request.cancel()
            if job in done:
                return job.result()

    async def _type_ahead(self) -> str | None:
        """The next message typed while the turn runs; None for Ctrl-C. (A KeyboardInterrupt must not
        leave a task: asyncio would raise it out of the event loop.)"""
        try:
            return await self.ahead.prompt_async("+ ", default=self._typed, bottom_toolbar=self._toolbar)
        except KeyboardInterrupt:
            return None
        except EOFError:  # Ctrl-D while a turn runs: nothing to end yet
            return ""

    async def _step_aside(self, typing: asyncio.Future[str | None]) -> None:
        """End the type-ahead prompt, keeping what was typed for the next one."""
        app = self.ahead.app
        self._typed = self.ahead.default_buffer.text
        if app.is_running and app.future is not None and not app.future.done():
            app.exit(result="")
        else:
            typing.cancel()
        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt, EOFError):
            await typing


def make_ui(
    repo: Path, history: Path | None, status: Callable[[], str], force_plain: bool = False
) -> PlainUI:
    """The terminal front end when stdin and stdout are a terminal, else the plain one."""
    if not force_plain and sys.stdin.isatty() and sys.stdout.isatty():
        return TerminalUI(repo, history, status)
    return PlainUI()
