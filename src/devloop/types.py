"""The values that cross devloop's seams: model replies, tool calls, observations, command results.

Every box in the data flow (model -> format -> tools -> runtime) passes one of these forward.
They are plain dataclasses so they serialise to the trajectory with `dataclasses.asdict`. FormatError
lives here too: formats raise it for a reply they cannot parse and the toolbox for a call it cannot
validate, and the agent turns it into an observation, so it belongs to no one layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Lone UTF-16 surrogates: a Python str may hold them, but they cannot be encoded as UTF-8 to send.
_SURROGATES = re.compile("[\ud800-\udfff]")
MAX_ERROR_CHARS = 2000


def clean_text(text: str) -> str:
    """`text` with every surrogate code point replaced by U+FFFD, so it can be encoded and sent."""
    return _SURROGATES.sub("\ufffd", text)


class FormatError(Exception):
    """The reply held no parseable call, an unknown tool, or invalid arguments.

    The message is shown to the model verbatim as an observation, so it must say exactly what was
    wrong and what shape was expected. It is made safe to send whatever it quotes: surrogates are
    replaced and it is cut at MAX_ERROR_CHARS.
    """

    def __init__(self, message: str = "") -> None:
        message = clean_text(str(message))
        if len(message) > MAX_ERROR_CHARS:
            message = message[: MAX_ERROR_CHARS - 3] + "..."
        super().__init__(message)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class SamplingParams:
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    # Server-specific fields merged into the request body (e.g. vLLM's skip_special_tokens).
    extra_body: dict[str, Any] | None = None


@dataclass
class Completion:
    """One assistant reply: text and/or native tool calls, as the server sent them."""

    content: str | None
    # Native tool calls exactly as in the OpenAI message: [{"id", "type", "function": {"name", "arguments"}}]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    latency_s: float = 0.0
    retries: int = 0


@dataclass
class ToolCall:
    """A call parsed from a completion, whatever its format. `arguments` is the decoded JSON object."""

    name: str
    arguments: dict[str, Any]
    id: str = ""
    raw: str = ""  # the text the call was parsed from (text formats) or the JSON arguments (native)


@dataclass
class Observation:
    """What a tool returns to the model."""

    text: str
    is_error: bool = False
    # Set by `finish`: the agent loop ends after this step.
    finished: bool = False
    # Free-form facts for the trajectory (exit code, timed_out, full_output_path, ...).
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class CommandResult:
    """The outcome of one command in a runtime's persistent shell."""

    output: str
    exit_code: int | None  # None when the command was killed (timeout) or the shell died
    timed_out: bool = False
    duration_s: float = 0.0
    # Path (on the host) of a file holding the command's complete output.
    output_path: str | None = None
    output_bytes: int = 0
    note: str = ""  # e.g. "shell restarted: the previous session exited"
