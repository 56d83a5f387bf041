from __future__ import annotations


class RetryError(Exception):
    """Every attempt failed. `last` is the final exception, `attempts` how many calls were made."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(f"gave up after {attempts} attempt(s): {type(last).__name__}: {last}")
