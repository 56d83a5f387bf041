"""The `execute_bash` tool: run a command in the runtime's persistent shell (OpenHands CodeAct's name
and arguments, so models trained on that scaffold call it unprompted)."""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from devloop.runtime.output import elision_marker
from devloop.tools.base import ToolContext, ToolSpec
from devloop.tools.common import load_description, make_spec
from devloop.types import CommandResult, Observation

# Upper bound on a model-chosen timeout; ctx.extra["max_command_timeout"] can lower it.
MAX_TIMEOUT_S = 3600
# Longest command run (1 MiB of text). Longer ones are refused before the command policy or the shell
# sees them: no real command is that long, and big content belongs in a file (README: Sandbox and
# command policy).
MAX_COMMAND_CHARS = 1024 * 1024


def oversized_command(command: str) -> str | None:
    """Why `command` is refused as too long (one line, for the model), or None when it is within the cap."""
    if len(command) <= MAX_COMMAND_CHARS:
        return None
    return (
        f"the command is {len(command):,} characters long, over the limit of {MAX_COMMAND_CHARS:,} for one "
        "command; write large content into a file with the str_replace_editor tool (command `create`), "
        "then run a short command that uses the file"
    )


class BashArgs(BaseModel):
    """Arguments of execute_bash; the field descriptions are what the model reads."""

    command: str = Field(
        description=(
            "The bash command to run. Several commands can be chained with `&&` or `;` or put on "
            "separate lines. Standard input is empty, so interactive programs get end-of-file."
        )
    )
    timeout: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TIMEOUT_S,
        description=(
            "Optional. Seconds the command may run before it is killed (with everything it started). "
            "Leave it out to use the default; raise it for long builds or test suites."
        ),
    )


class BashTool:
    """Runs `command` through ctx.runtime and reports output, exit code and any shell restart."""

    name: ClassVar[str] = "execute_bash"
    Args: ClassVar[type[BaseModel]] = BashArgs

    def spec(self) -> ToolSpec:
        return _spec()

    def run(self, args: BaseModel, ctx: ToolContext) -> Observation:
        assert isinstance(args, BashArgs)
        if not args.command.strip():
            return Observation(
                text="No command given: `command` must be a non-empty bash command.", is_error=True
            )
        too_long = oversized_command(args.command)
        if too_long:
            return Observation(
                text=f"Not run: {too_long}.", is_error=True, meta={"refused": "command_too_long"}
            )
        timeout = float(args.timeout) if args.timeout is not None else ctx.command_timeout
        ceiling = ctx.extra.get("max_command_timeout")
        if ceiling is not None:
            timeout = min(timeout, float(ceiling))
        result = ctx.runtime.run(args.command, timeout=timeout)
        meta: dict[str, Any] = {
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "duration_s": round(result.duration_s, 3),
            "output_path": result.output_path,
            "output_bytes": result.output_bytes,
        }
        if result.note:
            meta["note"] = result.note
        return Observation(text=format_result(result, cap=ctx.output_cap, timeout=timeout), meta=meta)


def format_result(result: CommandResult, *, cap: int, timeout: float) -> str:
    """The observation text: the (capped) output, a status line, and the runtime's note if any."""
    output = cap_output(result, cap).rstrip("\n")
    parts = [output] if output.strip() else []
    where = "partial output above" if parts else "it printed nothing"
    if result.timed_out:
        parts.append(f"[command timed out after {timeout:g} s and was killed; {where}]")
    elif result.exit_code is None:
        parts.append(f"[command was stopped before it finished; {where}]")
    else:
        parts.append(f"[exit code: {result.exit_code}]")
    if result.note:
        parts.append(f"[note: {result.note}]")
    return "\n".join(parts)


def cap_output(result: CommandResult, cap: int) -> str:
    """`result.output`, or if longer than `cap` characters its head and tail halves around a marker
    saying how much was left out and where the full output is."""
    text = result.output
    if len(text) <= cap:
        return text
    head_end, tail_start = _line_cuts(text, cap // 2, len(text) - (cap - cap // 2))
    head, tail = text[:head_end], text[tail_start:]
    kept_bytes = len(head.encode()) + len(tail.encode())
    if result.output_bytes > len(text.encode("utf-8", errors="replace")):
        # The runtime already cut the middle out: only the file size tells how much is missing.
        return head + elision_marker(result.output_bytes - kept_bytes, "bytes", result.output_path) + tail
    elided = len(text) - len(head) - len(tail)
    return head + elision_marker(elided, "characters", result.output_path) + tail


def _line_cuts(text: str, head_end: int, tail_start: int) -> tuple[int, int]:
    """Move the cut points to line boundaries when that loses at most a fifth of each part, so
    the model sees whole lines."""
    newline = text.rfind("\n", 0, head_end)
    if newline + 1 >= head_end * 4 // 5:
        head_end = newline + 1
    if tail_start > 0 and text[tail_start - 1] != "\n":
        newline = text.find("\n", tail_start, tail_start + (len(text) - tail_start) // 5)
        if newline >= 0:
            tail_start = newline + 1
    return head_end, tail_start


@cache
def _spec() -> ToolSpec:
    return make_spec(BashTool.name, BashArgs, load_description("bash"))
