"""Ctrl-C that is never lost, for the commands that start processes (run, eval)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def latched_interrupt(event: threading.Event | None = None) -> Iterator[Callable[[], None]]:
    """Python runs a signal handler wherever the main thread is, and a KeyboardInterrupt raised inside an
    at-fork callback (each command or sandbox start forks) is printed and dropped. So the SIGINT handler
    also latches the interrupt (and sets `event`, which an agent run polls as its cancel), and the
    returned check raises it again. The previous handler is restored on exit."""
    latched: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def on_sigint(signum: int, frame: object) -> None:
        latched.append(True)
        if event is not None:
            event.set()
        raise KeyboardInterrupt

    def check() -> None:
        if latched:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)
