"""Gate 4's training and validation rows: the tool-calling suite's splits rendered in a devloop tool-call
format, or a JSONL of `{"prompt", "completion"}` / `{"messages"}` rows (what `devloop dataset build`
writes) checked line by line, with OpenAI-style `tool_calls` written in the trained text format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devloop.formats.registry import get_format
from devloop.gate.result import GateInputError
from devloop.gate.suite import Suite, expected_calls
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall


def system_prompt(fmt_name: str, suite: Suite) -> str:
    from devloop.gate.tools import SYSTEM

    return f"{SYSTEM}\n\n{get_format(fmt_name).render_tools(suite.tools)}"


def suite_rows(suite: Suite, split: str, fmt_name: str) -> tuple[dict[str, Any], ...]:
    """The split's queries as chat conversations whose last turn is the call rendered in `fmt_name`."""
    fmt = get_format(fmt_name)
    rows = []
    for query in suite.split(split):
        calls = expected_calls(query)
        reply = "\n".join(str(fmt.render_call(c)) for c in calls) if calls else (query.answer or "")
        if not reply:
            continue  # a direct question with no answer to learn
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": system_prompt(fmt_name, suite)},
                    {"role": "user", "content": query.prompt},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return tuple(rows)


def in_text_format(row: dict[str, Any], fmt_name: str) -> list[dict[str, Any]]:
    """A `messages` row with its calls in the text format the gate trains. `devloop dataset build`'s
    native render carries calls as OpenAI `tool_calls` (an assistant turn with no text) and results as
    `tool` turns, and the tools in the row's `tools`: a chat template without tool support drops all of
    them, and the last turn's completion would be empty. Here each call is written as the model would
    write it in `fmt_name`, each run of results becomes that format's one user message of observations,
    and the tools are listed at the end of the system turn. Rows already in text pass unchanged."""
    fmt = get_format(fmt_name)
    out: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    results: list[Observation] = []

    def flush() -> None:
        if results:
            out.extend(fmt.history(Completion(content=""), calls, results)[1:])
            results.clear()

    for message in row["messages"]:
        role = message.get("role")
        if role == "tool":
            results.append(Observation(str(message.get("content") or "")))
            continue
        flush()
        text = str(message.get("content") or "")
        if role == "assistant" and message.get("tool_calls"):
            calls = [tool_call(entry, n) for n, entry in enumerate(message["tool_calls"])]
            rendered = "\n".join(str(fmt.render_call(c, n)) for n, c in enumerate(calls))
            text = f"{text.strip()}\n\n{rendered}" if text.strip() else rendered
        out.append({"role": role, "content": text})
    flush()
    tools = row.get("tools") or []
    if tools:
        specs = [
            ToolSpec(t["function"]["name"], t["function"].get("description", ""), t["function"]["parameters"])
            for t in tools
        ]
        listing = fmt.render_tools(specs)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{listing}".strip()
        else:
            out.insert(0, {"role": "system", "content": listing})
    return out


def tool_call(entry: dict[str, Any], n: int) -> ToolCall:
    """An OpenAI `tool_calls` entry (checked by read_examples) as a ToolCall."""
    function = entry["function"]
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments)
    return ToolCall(name=function["name"], arguments=arguments, id=str(entry.get("id") or f"call{n:05d}"))


def completion_of(row: dict[str, Any], fmt_name: str) -> str:
    if "messages" not in row:
        return str(row["completion"])
    messages = in_text_format(row, fmt_name)
    return str(next(m["content"] for m in reversed(messages) if m["role"] == "assistant"))


def prompt_completion(prompt_of: Any, row: dict[str, Any], fmt_name: str) -> dict[str, str]:
    """A row as (prompt text in the model's chat format, completion text)."""
    if "messages" in row:
        messages = in_text_format(row, fmt_name)
        last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
        return {"prompt": prompt_of(messages[:last]), "completion": str(messages[last].get("content") or "")}
    return {
        "prompt": prompt_of([{"role": "user", "content": row["prompt"]}]),
        "completion": row["completion"],
    }


def read_examples(path: Path) -> tuple[dict[str, Any], ...]:
    """A JSONL file of {"prompt", "completion"} or {"messages": [...]} rows (what `devloop dataset build`
    writes); a bad line is named by file and line."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as e:
        raise GateInputError(f"cannot read {path}: {e.strerror}") from e
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise GateInputError(f"{path}:{n}: not JSON ({e})") from e
        if isinstance(row, dict) and isinstance(row.get("messages"), list):
            messages = row["messages"]
            if not all(isinstance(m, dict) for m in messages) or not any(
                m.get("role") == "assistant" for m in messages
            ):
                raise GateInputError(f"{path}:{n}: messages need at least one assistant turn")
            problem = calls_problem(messages, row.get("tools"))
            if problem:
                raise GateInputError(f"{path}:{n}: {problem}")
            rows.append({"messages": messages, **({"tools": row["tools"]} if row.get("tools") else {})})
            continue
        if not (
            isinstance(row, dict)
            and isinstance(row.get("prompt"), str)
            and isinstance(row.get("completion"), str)
        ):
            raise GateInputError(
                f'{path}:{n}: expected {{"prompt": str, "completion": str}} or {{"messages": [...]}}'
            )
        rows.append(row)
    if not rows:
        raise GateInputError(f"{path}: no examples")
    return tuple(rows)


def calls_problem(messages: list[dict[str, Any]], tools: Any) -> str | None:
    """Why a row's OpenAI-style `tool_calls` / `tools` cannot be written as text, or None."""
    for m, message in enumerate(messages):
        for entry in message.get("tool_calls") or []:
            function = entry.get("function") if isinstance(entry, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return f"messages[{m}].tool_calls: each needs function.name"
            arguments = function.get("arguments") or {}
            try:
                parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                return f"messages[{m}].tool_calls: {function['name']}'s arguments are not JSON"
            if not isinstance(parsed, dict):
                return f"messages[{m}].tool_calls: {function['name']}'s arguments are not an object"
    if tools is not None and not (
        isinstance(tools, list)
        and all(
            isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
            and isinstance(t["function"].get("parameters"), dict)
            for t in tools
        )
    ):
        return "tools: OpenAI tool specs ({type, function: {name, parameters}}) expected"
    return None
