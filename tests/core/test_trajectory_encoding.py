"""A trajectory line encodes dataclasses one level at a time: the same JSON as dataclasses.asdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devloop.trajectory import _default
from devloop.types import Completion, Observation, ToolCall, Usage


@dataclass
class _Inner:
    name: str
    values: list[int] = field(default_factory=list)


@dataclass
class _Outer:
    inner: _Inner
    inners: tuple[_Inner, ...]
    by_key: dict[str, Any]
    where: Path


def test_the_same_json_as_asdict() -> None:
    one, two = _Inner("a", [1, 2]), _Inner("b")
    value = _Outer(one, (one, two), {"k": two, "n": [one, {"deep": two}]}, Path("/x/y"))
    expected = json.loads(json.dumps(asdict(value), default=str))
    assert json.loads(json.dumps(value, default=_default)) == expected


def test_step_event_types_encode_as_before() -> None:
    call = ToolCall(id="c1", name="execute_bash", arguments={"command": "ls"})
    native = {"id": "c1", "type": "function", "function": {"name": "execute_bash", "arguments": "{}"}}
    event = {
        "completion": Completion(content="hi", tool_calls=[native], usage=Usage(3, 4)),
        "calls": [call],
        "observations": [Observation("out", meta={"exit_code": 0, "nested": [Usage(1, 2)]})],
    }
    as_before = {
        k: [asdict(v) for v in vs] if isinstance(vs, list) else asdict(vs) for k, vs in event.items()
    }
    assert json.loads(json.dumps(event, default=_default)) == json.loads(json.dumps(as_before))
