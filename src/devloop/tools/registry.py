"""The Toolbox: the set of tools an agent offers, argument validation, and safe execution."""

from __future__ import annotations

import json
import traceback
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from devloop.runtime.base import RuntimeFailure
from devloop.tools.base import TOLERATED_EXTRA_ARGS, Tool, ToolContext, ToolSpec
from devloop.tools.common import clean_schema
from devloop.types import FormatError, Observation, ToolCall

_MAX_SHOWN_VALUE = 60


class Toolbox:
    """An ordered set of tools with unique names."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}; tool names must be unique")
            self._tools[tool.name] = tool
        self._specs: list[ToolSpec] | None = None

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        """The tool called `name`; KeyError if there is none."""
        return self._tools[name]

    def specs(self) -> list[ToolSpec]:
        """Each tool's spec, with its parameter schema in the plain shape models handle best."""
        if self._specs is None:
            self._specs = []
            for tool in self._tools.values():
                spec = tool.spec()
                self._specs.append(ToolSpec(spec.name, spec.description, clean_schema(spec.parameters)))
        return list(self._specs)

    def openai_tools(self) -> list[dict[str, Any]]:
        """The OpenAI `tools` request field for these tools."""
        return [spec.openai() for spec in self.specs()]

    def validate(self, call: ToolCall) -> BaseModel:
        """The call's arguments parsed into the tool's Args; FormatError saying precisely what is wrong."""
        tool = self._tools.get(call.name)
        if tool is None:
            available = ", ".join(f"`{name}`" for name in self._tools)
            raise FormatError(
                f"Unknown tool `{call.name}`. The available tools are {available}; call one of them by "
                "its exact name."
            )
        expected = f"Expected: {signature(self._spec_of(call.name))}."
        if not isinstance(call.arguments, dict):
            raise FormatError(
                f"The arguments of `{call.name}` must be a JSON object mapping parameter names to values, "
                f"but got {type(call.arguments).__name__} {_shorten(call.arguments)}. {expected}"
            )
        given = {k: v for k, v in call.arguments.items() if k not in TOLERATED_EXTRA_ARGS}
        accepted = {field.alias or key for key, field in tool.Args.model_fields.items()}  # MCP tools alias
        unknown = [key for key in given if key not in accepted]
        problems = [f"unknown parameter `{key}`" for key in unknown]
        try:
            args = tool.Args.model_validate({k: v for k, v in given.items() if k not in unknown})
        except ValidationError as exc:
            problems.extend(_describe(err) for err in exc.errors())
        else:
            if not problems:
                return args
        raise FormatError(f"Invalid arguments for `{call.name}`: {'; '.join(problems)}. {expected}")

    def execute(self, call: ToolCall, ctx: ToolContext) -> Observation:
        """Validate and run the call. Invalid calls raise FormatError; a tool that raises anything else
        (except RuntimeFailure, which ends the run) yields an error observation with a one-line reason."""
        args = self.validate(call)
        tool = self._tools[call.name]
        try:
            return tool.run(args, ctx)
        except RuntimeFailure:
            raise
        except Exception as exc:
            reason = (str(exc).strip().splitlines() or [""])[0]
            return Observation(
                text=f"The tool `{call.name}` failed unexpectedly: {type(exc).__name__}"
                + (f": {reason}" if reason else "")
                + ". Try a different approach.",
                is_error=True,
                meta={"exception": type(exc).__name__, "traceback": traceback.format_exc()},
            )

    def _spec_of(self, name: str) -> ToolSpec:
        return next(spec for spec in self.specs() if spec.name == name)


def signature(spec: ToolSpec) -> str:
    """A one-line call shape, e.g. `think(thought: string)`; optional parameters are marked with `?`."""
    props: dict[str, Any] = spec.parameters.get("properties", {})
    required = set(spec.parameters.get("required", []))
    parts = [f"{name}{'' if name in required else '?'}: {_type_of(schema)}" for name, schema in props.items()]
    return f"{spec.name}({', '.join(parts)})"


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return "|".join(_shorten(value) for value in schema["enum"])
    if "const" in schema:
        return _shorten(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "|".join(_type_of(option) for option in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    return str(kind) if kind else "any"


def _describe(err: Any) -> str:
    """One pydantic error as `parameter `x` ...` text."""
    loc = [part for part in err.get("loc", ()) if not str(part).startswith("function-")]
    name = str(loc[0]) if loc else "arguments"
    name += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    if err.get("type") == "missing":
        return f"missing required parameter `{name}`"
    msg = str(err.get("msg", "is invalid"))
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"parameter `{name}`: {msg}, got {_shorten(err.get('input'))}"


def _shorten(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else text[: _MAX_SHOWN_VALUE - 3] + "..."


def default_toolbox(extra: Sequence[Tool] = ()) -> Toolbox:
    """The standard CodeAct tool set: execute_bash, str_replace_editor, search_code, think, finish; then
    `extra` (the user's MCP tools, devloop.tools.mcp), before finish."""
    from devloop.tools.bash import BashTool
    from devloop.tools.editor import EditorTool
    from devloop.tools.finish import FinishTool
    from devloop.tools.search_code import SearchCodeTool
    from devloop.tools.think import ThinkTool

    return Toolbox([BashTool(), EditorTool(), SearchCodeTool(), ThinkTool(), *extra, FinishTool()])
