"""What a model's context window is: the server's listing, or the message of a refusal as too long."""

from __future__ import annotations

import re
from typing import Any

from devloop.models.base import ModelError

_WINDOW_IN_ERROR = re.compile(r"maximum context length is (\d[\d,]*)", re.IGNORECASE)


def context_window_of(model: Any) -> int | None:
    """The window `model` reports (OpenAICompatModel.context_window: the server's /v1/models listing),
    or None when it cannot say."""
    lookup = getattr(model, "context_window", None)
    if not callable(lookup):
        return None
    try:
        window = lookup()
    except Exception:  # a lookup is best effort: the setting, or recovery, covers an unknown window
        return None
    return window if isinstance(window, int) and window > 0 else None


def window_from_error(reason: str) -> int | None:
    """The window a context-length error states ("maximum context length is 8192 tokens"), if it does."""
    found = _WINDOW_IN_ERROR.search(reason)
    return int(found.group(1).replace(",", "")) if found else None


def is_context_error(error: ModelError) -> bool:
    """Whether a model error is the server refusing a prompt longer than its context window."""
    return bool(getattr(error, "context_length", False)) or "context length exceeded" in error.reason
