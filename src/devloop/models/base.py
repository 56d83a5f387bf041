"""The Model seam: messages + tool specs + sampling params in, one Completion out."""

from __future__ import annotations

from typing import Any, Protocol

from devloop.types import Completion, SamplingParams


class ModelError(Exception):
    """The model could not produce a completion (retries exhausted, auth, context length...).

    `reason` is a one-line message fit for result.json; `retryable` says whether the failure
    was transient (rate limit, 5xx, network) and retries ran out, or was final (auth, bad request).
    """

    def __init__(self, reason: str, *, retryable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Model(Protocol):
    name: str

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        params: SamplingParams,
    ) -> Completion:
        """Return the next assistant reply. `tools` is the OpenAI `tools` list, or None for text formats.

        Raises ModelError when no completion can be had.
        """
        ...

    def close(self) -> None: ...
