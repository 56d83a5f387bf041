"""Helpers shared by the tools: their long descriptions and the JSON schema the model sees."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

from pydantic import BaseModel

from devloop.tools.base import ToolSpec


@functools.cache
def load_description(name: str) -> str:
    """The text of `<name>.md` shipped in the `devloop.tools` package, without trailing whitespace.

    Raises FileNotFoundError naming the missing file (a packaging bug, not user input).
    """
    resource = resources.files("devloop.tools").joinpath(f"{name}.md")
    if not resource.is_file():
        raise FileNotFoundError(f"tool description devloop/tools/{name}.md is missing from the package")
    return resource.read_text(encoding="utf-8").strip()


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema reduced to what a model needs, in the shape OpenAI-style tools use.

    Optional fields come out of pydantic as `anyOf: [{type: X}, {type: null}]` with `default: null`;
    models (and chat templates that render the schema as text) cope far better with a plain `type: X`
    and the field simply left out of `required`. Titles are noise to a model and are dropped.
    Idempotent, and the input is not modified.
    """
    return _clean(schema)


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if not (isinstance(s, dict) and s.get("type") == "null")]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            merged = {k: v for k, v in node.items() if k != "anyOf"}
            merged.update(non_null[0])
            node = merged
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _clean(prop) for name, prop in value.items()}
        else:
            out[key] = _clean(value)
    return out


def make_spec(name: str, args: type[BaseModel], description: str | None = None) -> ToolSpec:
    """The ToolSpec of a tool: its description (default: `<name>.md`) and its Args' cleaned schema."""
    text = description if description is not None else load_description(name)
    return ToolSpec(name=name, description=text, parameters=copy.deepcopy(_parameters(args)))


@functools.lru_cache(maxsize=256)
def _parameters(args: type[BaseModel]) -> dict[str, Any]:
    """An Args class's cleaned schema, made once per process (pydantic takes milliseconds per tool and
    a run asks for every tool's); callers get a copy."""
    parameters = clean_schema(args.model_json_schema())
    # The Args docstring is for developers; the model reads the tool description instead.
    parameters.pop("description", None)
    return parameters
