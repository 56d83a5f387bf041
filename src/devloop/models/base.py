"""The Model seam: messages + tool specs + sampling params in, one Completion out."""

from __future__ import annotations

from typing import Any, Protocol

from devloop.types import Completion, SamplingParams


class ModelError(Exception):
    """The model could not produce a completion (retries exhausted, auth, context length...).

    `reason` is a one-line message fit for result.json; `retryable` says whether the failure
    was transient (rate limit, 5xx, network) and retries ran out, or was final (auth, bad request).
    `context_length`: the server refused the prompt as longer than its context window (a caller that can
    shorten the conversation may try again; see devloop.condense).
    """

    def __init__(self, reason: str, *, retryable: bool = False, context_length: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.context_length = context_length


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
