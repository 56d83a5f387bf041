"""What the formats need from a tool's JSON schema: lookup, argument checks, text-value conversion,
and a human-readable description for prompts.

ToolSpec.parameters is a pydantic JSON schema, so optional fields arrive as `anyOf: [{type: X}, {type:
null}]`, nested models as `$ref` into `$defs`, and Literal fields as `enum`. Everything here reads those
shapes; full type validation is left to the tool layer (pydantic), as the formats only need enough to
name parameters and to turn text values (xml format) into the schema's JSON type.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from devloop.formats._guard import quote
from devloop.formats.base import FormatError
from devloop.tools.base import TOLERATED_EXTRA_ARGS, ToolSpec

_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def find_tool(name: str, tools: list[ToolSpec]) -> ToolSpec:
    """The spec named `name`; FormatError listing the available tools (and a near miss) otherwise."""
    for spec in tools:
        if spec.name == name:
            return spec
    names = [spec.name for spec in tools]
    if not names:
        raise FormatError(f"Unknown tool {quote(name)}: no tools are available in this run.")
    hint = _did_you_mean(name, names)
    raise FormatError(f"Unknown tool {quote(name)}{hint}. Available tools: {', '.join(names)}.")


def _did_you_mean(word: str, choices: list[str]) -> str:
    if len(word) > 100:  # no near miss is that long, and difflib indexes every character of `word`
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def properties(spec: ToolSpec) -> dict[str, dict[str, Any]]:
    props = spec.parameters.get("properties")
    return props if isinstance(props, dict) else {}


def required(spec: ToolSpec) -> list[str]:
    req = spec.parameters.get("required")
    return [r for r in req if isinstance(r, str)] if isinstance(req, list) else []


def check_arguments(spec: ToolSpec, args: dict[str, Any]) -> None:
    """Raise FormatError naming every missing required and every unknown parameter of the call."""
    props = properties(spec)
    problems: list[str] = []
    missing = [name for name in required(spec) if name not in args]
    if missing:
        problems.append("missing required parameter " + ", ".join(repr(m) for m in missing))
    if props:
        unknown = [name for name in args if name not in props and name not in TOLERATED_EXTRA_ARGS]
        for name in unknown[:5]:  # a hostile call may bring thousands; five make the point
            problems.append(f"unknown parameter {quote(name)}{_did_you_mean(name, list(props))}")
        if len(unknown) > 5:
            problems.append(f"and {len(unknown) - 5} more unknown parameters")
    if problems:
        raise FormatError(
            f"Invalid call to tool {spec.name!r}: {'; '.join(problems)}. "
            f"Parameters of {spec.name!r}: {signature(spec)}."
        )


def signature(spec: ToolSpec) -> str:
    """`name (type, required), ...`: the parameter list quoted in error messages."""
    req = set(required(spec))
    parts = [
        f"{name} ({type_label(schema, spec.parameters)}, {'required' if name in req else 'optional'})"
        for name, schema in properties(spec).items()
    ]
    return ", ".join(parts) if parts else "none"


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (pydantic puts nested models under `$defs`)."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 16:
        ref: str = schema["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            break
        schema = target
        seen += 1
    return schema if isinstance(schema, dict) else {}


def json_types(schema: Any, root: dict[str, Any]) -> list[str]:
    """The JSON types a parameter schema admits, in schema order ([] when unconstrained)."""
    schema = _resolve(schema, root)
    found: list[str] = []

    def add(t: str) -> None:
        if t in _JSON_TYPES and t not in found:
            found.append(t)

    declared = schema.get("type")
    if isinstance(declared, str):
        add(declared)
    elif isinstance(declared, list):
        for t in declared:
            if isinstance(t, str):
                add(t)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            for t in json_types(sub, root):
                add(t)
    values = list(schema.get("enum") or [])
    if "const" in schema:
        values.append(schema["const"])
    if not found:
        for value in values:
            add(json_type_of(value))
    return found


def json_type_of(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _enum_values(schema: Any, root: dict[str, Any]) -> list[Any]:
    schema = _resolve(schema, root)
    values = list(schema.get("enum") or [])
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            values.extend(v for v in _enum_values(sub, root) if v not in values)
    return values


def type_label(schema: Any, root: dict[str, Any]) -> str:
    """A short type name for prompts: `string`, `integer`, `array of integer`, `one of: a, b`..."""
    enum = _enum_values(schema, root)
    if enum:
        return "one of: " + ", ".join(json.dumps(v, ensure_ascii=False) for v in enum)
    labels = []
    for t in json_types(schema, root):
        if t == "null":
            continue
        if t == "array":
            items = _array_items(schema, root)
            item_types = [it for it in json_types(items, root) if it != "null"] if items else []
            labels.append(f"array of {'/'.join(item_types)}" if item_types else "array")
        else:
            labels.append(t)
    return " or ".join(labels) if labels else "any"


def _array_items(schema: Any, root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if schema.get("type") == "array":
        return schema.get("items")
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            items = _array_items(sub, root)
            if items is not None:
                return items
    return None


def describe_tools(tools: list[ToolSpec]) -> str:
    """Every tool as a prompt section: name, description, parameters with type and required/optional."""
    blocks = []
    for spec in tools:
        lines = [f"## {spec.name}", spec.description.strip() or "(no description)", "Parameters:"]
        req = set(required(spec))
        props = properties(spec)
        for name, schema in props.items():
            resolved = _resolve(schema, spec.parameters)
            status = "required" if name in req else "optional"
            desc = str(resolved.get("description") or schema.get("description") or "").strip()
            entry = f"- {name} ({type_label(schema, spec.parameters)}, {status})"
            lines.append(f"{entry}: {desc}" if desc else entry)
        if not props:
            lines.append("- (none)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# Friendlier sample values for parameter names that coding tools commonly use.
_NAMED_SAMPLES: dict[str, Any] = {
    "command": "ls -la",
    "path": "/path/to/file.py",
    "message": "A summary of what was done.",
    "thought": "What to try next and why.",
}


def example_arguments(spec: ToolSpec) -> dict[str, Any]:
    """Plausible arguments for a worked example: each required parameter with a value of its type."""
    samples: dict[str, Any] = {
        "string": "value",
        "integer": 1,
        "number": 1,
        "boolean": True,
        "array": [1, 2],
        "object": {},
    }
    args: dict[str, Any] = {}
    for name in required(spec):
        schema = properties(spec).get(name, {})
        enum = _enum_values(schema, spec.parameters)
        types = [t for t in json_types(schema, spec.parameters) if t != "null"] or ["string"]
        if enum:
            args[name] = enum[0]
        elif types[0] == "string" and name in _NAMED_SAMPLES:
            args[name] = _NAMED_SAMPLES[name]
        else:
            args[name] = samples.get(types[0], "value")
    return args


def pick_example_tool(tools: list[ToolSpec]) -> ToolSpec | None:
    """The tool to show in examples: the first one with a required string parameter, else the first."""
    for spec in tools:
        for name in required(spec):
            if "string" in json_types(properties(spec).get(name, {}), spec.parameters):
                return spec
    return tools[0] if tools else None
