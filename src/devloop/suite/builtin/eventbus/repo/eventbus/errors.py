from __future__ import annotations


class HandlerErrors(Exception):
    """One or more handlers raised while an event was delivered. `errors` pairs handler names and exceptions."""

    def __init__(self, topic: str, errors: list[tuple[str, BaseException]]) -> None:
        self.topic = topic
        self.errors = errors
        names = ", ".join(f"{name} ({type(exc).__name__}: {exc})" for name, exc in errors)
        super().__init__(f"{len(errors)} handler(s) failed for {topic!r}: {names}")
