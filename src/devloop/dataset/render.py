"""A trajectory as training rows: the conversation the model saw, in one of devloop's tool-call formats
(`native` function calls or the `xml` CodeAct text format), written as an OpenAI, Mistral or ShareGPT row.

Every message is rebuilt by the formats' own `history()` (the code the agent used to extend its
conversation), so an observation is the text the model was shown, cut where the tool cut it, and a
call's `arguments` are a JSON string. When the run used the target format, the step's recorded reply
is replayed as it was; otherwise the parsed calls are rendered by the target format's `render_call`
with the reply's reasoning text kept. A step that ended in a format error keeps its (broken) reply and
the error the model was shown, with `weight: 0` on the assistant turn so a trainer that honours it
(OpenAI and Mistral fine-tuning do) leaves it out of the loss instead of the trajectory being dropped.
Call ids are rewritten to 9-character alphanumeric ids (what Mistral's tokenizers demand), derived from
the call and its position, so a re-run writes the same ids.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from devloop.formats._common import stable_call_id
from devloop.formats.native import render_native_call
from devloop.formats.registry import get_format
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

RENDERS = ("native", "xml")
FORMATS = ("openai", "mistral", "sharegpt")


@functools.lru_cache(maxsize=1)
def tool_specs() -> tuple[ToolSpec, ...]:
    """The standard tool set's specs (what a run's model was shown; the trajectory does not repeat them)."""
    from devloop.tools.registry import default_toolbox

    return tuple(default_toolbox().specs())


def openai_tools() -> list[dict[str, Any]]:
    return [spec.openai() for spec in tool_specs()]


def run_specs(events: list[dict[str, Any]]) -> tuple[ToolSpec, ...]:
    """The tools the run's model was offered, from its start event (runs since the start event recorded
    them: MCP tools and search_code included), else the standard tool set."""
    start = next((e for e in events if e.get("type") == "start"), {})
    raw = start.get("tools")
    if not isinstance(raw, list) or not raw:
        return tool_specs()
    specs = []
    for entry in raw:
        fn = entry.get("function") if isinstance(entry, dict) else None
        if not (
            isinstance(fn, dict)
            and isinstance(fn.get("name"), str)
            and isinstance(fn.get("parameters"), dict)
        ):
            return tool_specs()  # a malformed list: the standard set rather than a partial one
        specs.append(ToolSpec(fn["name"], str(fn.get("description") or ""), fn["parameters"]))
    return tuple(specs)


def _calls(step: dict[str, Any]) -> list[ToolCall]:
    calls = []
    for raw in step.get("calls") or []:
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            args = raw.get("arguments") if isinstance(raw.get("arguments"), dict) else {}
            raw_text = raw.get("raw") if isinstance(raw.get("raw"), str) else None
            calls.append(
                ToolCall(name=raw["name"], arguments=args, id=str(raw.get("id") or ""), raw=raw_text)
            )
    return calls


def _observations(step: dict[str, Any]) -> list[Observation]:
    obs = [
        Observation(text=str(o.get("text", "")), is_error=o.get("is_error") is True)
        for o in step.get("observations") or []
        if isinstance(o, dict)
    ]
    error = step.get("format_error")
    if isinstance(error, str) and error and not obs:
        obs = [Observation(error, is_error=True)]  # what the agent answered a reply it could not parse with
    return obs


def _completion(step: dict[str, Any]) -> Completion:
    raw = step.get("completion") if isinstance(step.get("completion"), dict) else {}
    content = raw.get("content") if isinstance(raw.get("content"), str) else ""
    tool_calls = [c for c in raw.get("tool_calls") or [] if isinstance(c, dict)]
    return Completion(content=content, tool_calls=tool_calls)


def _reasoning(content: str, calls: list[ToolCall]) -> str:
    """The reply text before its first call, for a reply written in a text format."""
    for call in calls:
        if call.raw and call.raw in content:
            return content[: content.index(call.raw)].strip()
    return content.strip()


def _native(name: str) -> bool:
    """Whether the run's format put calls outside the reply text; a name no format is registered under
    (a run with a format this install lacks) counts as a text format, whose call text is cut out."""
    try:
        return get_format(name).native
    except ValueError:
        return False


def _system(system: str, run_format: str, render: str, specs: tuple[ToolSpec, ...]) -> str:
    """The system prompt with the tool description of `render` in place of `run_format`'s (the prompt
    template appends it, after a blank line, at the end)."""
    if run_format == render:
        return system
    try:
        old = get_format(run_format).render_tools(list(specs))
    except ValueError:
        old = ""
    new = get_format(render).render_tools(list(specs))
    if old and system.endswith(f"\n{old}\n"):
        system = system[: -len(old) - 2]
    return f"{system}\n{new}\n" if new else system


def conversation(
    events: list[dict[str, Any]], render: str = "native", system: str | None = None
) -> list[dict[str, Any]]:
    """OpenAI-style messages of a trajectory rendered in `render` (native or xml), ending with the last
    assistant turn; assistant turns carry `weight` (0 for a turn that ended in a format error).

    `system`: the system prompt the trained model will be run with, in place of the one the run had
    (with `render`'s tool description appended for a text format, as the prompt template does)."""
    fmt = get_format(render)
    start = next((e for e in events if e.get("type") == "start"), {})
    settings = start.get("settings") if isinstance(start.get("settings"), dict) else {}
    run_format = str(settings.get("tool_format") or "native")
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _system(system, "native", render, run_specs(events))})
    elif isinstance(start.get("system"), str):
        out.append(
            {"role": "system", "content": _system(start["system"], run_format, render, run_specs(events))}
        )
    if isinstance(start.get("task"), str):
        out.append({"role": "user", "content": start["task"]})
    serial = 0
    for step in (e for e in events if e.get("type") == "step"):
        calls, obs, recorded = _calls(step), _observations(step), _completion(step)
        error = bool(step.get("format_error"))
        if run_format == render or error:
            completion = recorded if run_format == render or not fmt.native else Completion(recorded.content)
        elif fmt.native:
            reasoning = _reasoning(recorded.content or "", calls)
            completion = Completion(reasoning, [render_native_call(c, i) for i, c in enumerate(calls)])
        else:
            reasoning = recorded.content if _native(run_format) else _reasoning(recorded.content or "", calls)
            text = "\n".join(str(fmt.render_call(c, i)) for i, c in enumerate(calls))
            completion = Completion(f"{reasoning.strip()}\n\n{text}".strip() if reasoning else text)
        msgs = fmt.history(completion, calls, obs)
        ids: dict[str, str] = {}
        for msg in msgs:
            if msg["role"] == "assistant":
                msg["weight"] = 0 if error else 1
                for tc in msg.get("tool_calls") or []:
                    fn = tc["function"]
                    ids[tc["id"]] = tc["id"] = stable_call_id(serial, fn["name"], fn["arguments"])
                    serial += 1
            elif msg["role"] == "tool":
                msg["tool_call_id"] = ids.get(msg["tool_call_id"], msg["tool_call_id"])
        for text in step.get("feedback") or []:
            if isinstance(text, str) and text and msgs:  # the agent appends it to the step's last message
                msgs[-1]["content"] = f"{msgs[-1].get('content') or ''}\n\n{text}".lstrip()
        out += msgs
    while out and out[-1]["role"] != "assistant":
        out.pop()  # what followed the last reply (finish's acknowledgement) is never trained on
    return out


def row(record: dict[str, Any], render: str, fmt: str, system: str | None = None) -> dict[str, Any]:
    """One training row of `record` (an attempt from devloop.dataset.collect) in format `fmt`."""
    messages = conversation(record["events"], render, system)
    meta = {
        "instance_id": record["instance_id"],
        "run": record["run"],
        "attempt": record["index"],
        "render": render,
        "resolved": record["resolved"],
        "exit_status": record["exit_status"],
    }
    tools = [spec.openai() for spec in run_specs(record["events"])] if render == "native" else []
    if fmt == "openai":
        return {**meta, "messages": messages, "tools": tools} if tools else {**meta, "messages": messages}
    if fmt == "mistral":
        return {**meta, "messages": [_mistral(m) for m in messages], **({"tools": tools} if tools else {})}
    if fmt == "sharegpt":
        return {**meta, "conversations": _sharegpt(messages), "tools": json.dumps(tools, ensure_ascii=False)}
    raise ValueError(f"unknown data set format {fmt!r}; give one of {', '.join(FORMATS)}")


def _mistral(msg: dict[str, Any]) -> dict[str, Any]:
    """A message as mistral-finetune reads it: an assistant turn with calls and no text has no content."""
    out = dict(msg)
    if out["role"] == "assistant" and out.get("tool_calls") and not out.get("content"):
        out.pop("content", None)
    return out


_SHAREGPT_ROLE = {"system": "system", "user": "human", "tool": "observation"}


def _sharegpt(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """ShareGPT turns (LLaMA-Factory's roles): a native call turn is `function_call` whose value is the
    JSON of its calls (arguments as JSON strings), consecutive tool results are one `observation`. The
    format has no per-turn loss weight, so format-error turns stay in."""
    out: list[dict[str, str]] = []
    for msg in messages:
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                for c in msg["tool_calls"]
            ]
            out.append(
                {
                    "from": "function_call",
                    "value": json.dumps(calls if len(calls) > 1 else calls[0], ensure_ascii=False),
                }
            )
        elif msg["role"] == "assistant":
            out.append({"from": "gpt", "value": str(msg.get("content") or "")})
        elif msg["role"] == "tool" and out and out[-1]["from"] == "observation":
            out[-1]["value"] += "\n\n" + str(msg.get("content") or "")
        else:
            out.append(
                {"from": _SHAREGPT_ROLE.get(msg["role"], "human"), "value": str(msg.get("content") or "")}
            )
    return out


def check_mistral(row_: dict[str, Any]) -> str | None:
    """Why mistral-common's fine-tuning validator refuses the row, None when it accepts it or when
    mistral-common is not installed. The v11 validator: the instruct version whose tool calls need
    9-character alphanumeric ids and may carry reasoning text beside them (Devstral's)."""
    try:
        from mistral_common.exceptions import MistralCommonException
        from mistral_common.protocol.instruct.request import ChatCompletionRequest
        from mistral_common.protocol.instruct.validator import MistralRequestValidatorV11, ValidationMode
    except ImportError:
        return None
    messages = [{k: v for k, v in m.items() if k != "weight"} for m in row_["messages"]]
    try:
        request = ChatCompletionRequest.from_openai(messages, tools=row_.get("tools") or None)
        MistralRequestValidatorV11(ValidationMode.finetuning).validate_request(request)
    except (MistralCommonException, ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None
