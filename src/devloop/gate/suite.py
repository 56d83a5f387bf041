"""devloop's tool-calling suite (shipped data) and its grader: each query is one user request, the reply's
calls are graded on tool name, argument schema and argument values.

The suite file holds the tools (JSON schemas), the categories with their minimum pass rates, and the
queries, each in a split: `test` (Gate 3 and Gate 5's acceptance test), `validation` (Gate 4's held-out
queries) and `train` (Gate 4's training examples). An expected argument value is either a JSON value,
compared exactly (paths without a leading `./`, strings stripped), or a matcher: `{"contains": TEXT}`
(case-sensitive substring) or `{"one_of": [VALUES]}`. Arguments a query does not name may be given when the
schema allows them (`Run the tests` may name a path).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from devloop.formats._schema import check_arguments, find_tool, json_type_of, json_types
from devloop.gate.result import GateInputError
from devloop.tools.base import ToolSpec
from devloop.types import FormatError, ToolCall

SPLITS = ("train", "validation", "test")
_MATCHERS = ("contains", "one_of")


@dataclass
class Query:
    id: str
    split: str
    category: str
    prompt: str
    expect: list[dict[str, Any]]  # [] = answer directly, call no tool
    answer: str = ""  # a direct answer to train on (train split)


@dataclass
class Suite:
    name: str
    tools: list[ToolSpec]
    minimums: dict[str, float]  # category -> minimum pass rate
    queries: list[Query]

    def split(self, name: str) -> list[Query]:
        return [q for q in self.queries if q.split == name]


@dataclass
class Grade:
    ok: bool
    stage: str  # "pass", "format", "name", "schema", "value", "count"
    detail: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    reply: str = ""  # the start of the reply text, to see why it failed


def shipped_suite_path() -> Path:
    return Path(str(resources.files("devloop.gate") / "data" / "toolsuite.json"))


def load_suite(path: Path | None = None) -> Suite:
    """The suite at `path` (default: the shipped one); a malformed entry is named by file and query."""
    path = path or shipped_suite_path()
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise GateInputError(f"cannot read suite {path}: {e.strerror}") from e
    except ValueError as e:
        raise GateInputError(f"{path}: not JSON ({e})") from e
    if not isinstance(data, dict):
        raise GateInputError(f"{path}: expected an object with tools, categories and queries")
    try:
        tools = [ToolSpec(t["name"], t.get("description", ""), t["parameters"]) for t in data["tools"]]
        minimums = {str(k): float(v) for k, v in data["categories"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise GateInputError(f"{path}: tools / categories malformed ({e})") from e
    names = {t.name for t in tools}
    queries: list[Query] = []
    for n, raw in enumerate(data.get("queries", [])):
        where = f"{path}: query {raw.get('id', n) if isinstance(raw, dict) else n}"
        try:
            query = Query(**raw)
        except TypeError as e:
            raise GateInputError(f"{where}: {e}") from e
        if query.split not in SPLITS:
            raise GateInputError(f"{where}: split {query.split!r} is not one of {', '.join(SPLITS)}")
        if query.category not in minimums:
            raise GateInputError(f"{where}: category {query.category!r} is not in categories")
        for call in query.expect:
            if not isinstance(call, dict) or call.get("name") not in names:
                raise GateInputError(f"{where}: expected call {call!r} names no suite tool")
        queries.append(query)
    if not queries:
        raise GateInputError(f"{path}: no queries")
    return Suite(str(data.get("name", path.stem)), tools, minimums, queries)


def _normal(key: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if key == "path" or key.endswith("_path"):
            value = value.removeprefix("./").rstrip("/") or "."
    return value


def value_matches(key: str, expected: Any, got: Any) -> bool:
    if isinstance(expected, dict) and len(expected) == 1 and next(iter(expected)) in _MATCHERS:
        ((kind, want),) = expected.items()
        if kind == "contains":
            return isinstance(got, str) and str(want) in got
        return any(value_matches(key, option, got) for option in want)
    got, expected = _normal(key, got), _normal(key, expected)
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected
    return bool(got == expected)


def _schema_problem(spec: ToolSpec, args: dict[str, Any]) -> str | None:
    try:
        check_arguments(spec, args)
    except FormatError as e:
        return str(e)
    props = spec.parameters.get("properties") or {}
    for key, value in args.items():
        if key not in props:
            continue
        allowed = json_types(props[key], spec.parameters)
        kind = json_type_of(value)
        if allowed and kind not in allowed and not (kind == "integer" and "number" in allowed):
            return f"{spec.name}.{key}: {kind}, the schema wants {' or '.join(allowed)}"
    return None


def _call_problem(expected: dict[str, Any], call: ToolCall) -> tuple[str, str] | None:
    """(stage, why) when `call` does not satisfy `expected`, None when it does."""
    if call.name != expected["name"]:
        return "name", f"called {call.name}, expected {expected['name']}"
    for key, want in expected.get("arguments", {}).items():
        if key not in call.arguments:
            return "value", f"{call.name}: no {key} (expected {want!r})"
        if not value_matches(key, want, call.arguments[key]):
            return "value", f"{call.name}.{key} = {call.arguments[key]!r}, expected {want!r}"
    return None


def grade(query: Query, calls: list[ToolCall] | None, tools: list[ToolSpec], error: str = "") -> Grade:
    """Grade the calls parsed from one reply (`calls` None with `error`: the reply did not parse)."""
    shown = [{"name": c.name, "arguments": c.arguments} for c in calls or []]
    if calls is None:
        if not query.expect:  # no parseable call is what a direct answer looks like
            return Grade(True, "pass", "answered without a tool call")
        # The format parsers check names and parameters themselves; keep the stage their message names.
        stage = "name" if error.startswith("Unknown tool") else "format"
        stage = "schema" if error.startswith("Invalid call to tool") else stage
        return Grade(False, stage, error or "no tool call")
    if not query.expect:
        return Grade(
            False, "count", f"called {', '.join(c.name for c in calls)} for a direct question", shown
        )
    for call in calls:
        try:
            spec = find_tool(call.name, tools)
        except FormatError:
            return Grade(False, "name", f"unknown tool {call.name!r}", shown)
        problem = _schema_problem(spec, call.arguments)
        if problem:
            return Grade(False, "schema", problem, shown)
    if len(calls) != len(query.expect):
        return Grade(False, "count", f"{len(calls)} calls, expected {len(query.expect)}", shown)
    # Calls in one reply are matched in any order; each expected call needs its own.
    unmatched = list(calls)
    for want in query.expect:
        problems = []
        for call in unmatched:
            problem = _call_problem(want, call)
            if problem is None:
                unmatched.remove(call)
                break
            problems.append(problem)
        else:
            stage, why = next((p for p in problems if p[0] == "value"), problems[0])
            return Grade(False, stage, why, shown)
    return Grade(True, "pass", "", shown)


def category_table(rows: Iterable[tuple[Query, Grade]], minimums: dict[str, float]) -> dict[str, Any]:
    """{category: {passed, total, rate, minimum, ok}} plus overall figures."""
    table: dict[str, dict[str, Any]] = {}
    passed = total = 0
    for query, result in rows:
        cell = table.setdefault(query.category, {"passed": 0, "total": 0})
        cell["total"] += 1
        cell["passed"] += int(result.ok)
        total += 1
        passed += int(result.ok)
    for category, cell in table.items():
        cell["rate"] = cell["passed"] / cell["total"]
        cell["minimum"] = minimums.get(category, 0.0)
        cell["ok"] = cell["rate"] >= cell["minimum"]
    return {
        "categories": dict(sorted(table.items())),
        "passed": passed,
        "total": total,
        "overall": passed / total if total else 0.0,
    }


def concrete(value: Any) -> Any:
    """A value satisfying the matcher (`contains` -> its text, `one_of` -> its first value)."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _MATCHERS:
        ((kind, want),) = value.items()
        return want if kind == "contains" else concrete(want[0])
    return value


def expected_calls(query: Query) -> list[ToolCall]:
    """The query's expected calls as ToolCalls a model could write (a training or validation target)."""
    return [
        ToolCall(
            name=w["name"],
            arguments={k: concrete(v) for k, v in w.get("arguments", {}).items()},
            id=f"call{n:05d}",
        )
        for n, w in enumerate(query.expect)
    ]
