"""Fuzzing the format parsers: whatever a model or a broken server sends, parse() returns calls or raises
FormatError (the agent shows that text to the model), and history() gives messages that can be sent back.

The cases come from a fixed seed, so a failure names a case that reproduces. `-s` prints the figures.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devloop.formats import FORMAT_NAMES, MAX_CALLS, MAX_JSON_DEPTH, MAX_REPLY_CHARS, FormatError, get_format
from devloop.formats.registry import render_call
from devloop.tools.base import ToolSpec
from devloop.types import Completion, Observation, ToolCall

SEED = 9
CASES_PER_FORMAT = 1200
# A quadratic parser takes minutes on the near-cap inputs below; a linear one takes milliseconds.
SLOWEST_CASE_S = 3.0

# Pieces of every format's syntax, for soups and insertions.
PIECES = [
    "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<function=", "</function>", "<parameter=", "</parameter>",
    "<tool_call>", "</tool_call>", "execute_bash", "think", "str_replace_editor", "view_range", "command",
    "thought", "{", "}", "[", "]", '"', ":", ",", ">", "\n", " ", "1", "null", "</s>", "\\", "x",
    '{"name": ', '"arguments": ', "\\u", "\\ud800", "1e999", "9" * 5000, "<function=think>",
]  # fmt: skip
HOSTILE_CHARS = ["\ud800", "\udfff", "\x00", "\r", "\u2028", "\ufeff", "🚀", "\x1b[31m", "\\", '"', "\n"]
# Characters of valid argument values: quotes, braces, tags and escapes, but never a whole closing tag.
VALUE_ALPHABET = [*"{}[]\"'\\<>/=,:;$`#ab1 \t\n\r", "é", "中", "🚀", "\x00", "\u2028", "\\n", "</", "EOF"]
# Values that are not what any field expects, and Python objects no JSON decoder produces.
ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, float("nan"), float("inf"), "", "\ud800", [], {}, [1, [2]],
                         {"a": {"b": None}}, ("t",), b"bytes", {1, 2}, {(1, 2): "tuple key"}, 10**5000]  # fmt: skip


def random_text(rng: random.Random, size: int | None = None) -> str:
    return "".join(
        rng.choice(VALUE_ALPHABET) for _ in range(size if size is not None else rng.randint(0, 40))
    )


def random_call(rng: random.Random) -> ToolCall:
    """A valid call to one of the tools in conftest.make_tools, with awkward but valid values."""
    kind = rng.randrange(4)
    if kind == 0:
        args: dict[str, Any] = {"command": random_text(rng)}
        if rng.random() < 0.3:
            args["timeout"] = rng.randint(1, 3600)
        return ToolCall("execute_bash", args)
    if kind == 1:
        args = {
            "command": rng.choice(["view", "create", "str_replace", "insert"]),
            "path": "/repo/" + random_text(rng, 8),
        }
        for key in rng.sample(["file_text", "old_str", "new_str"], rng.randint(0, 2)):
            args[key] = random_text(rng)
        if rng.random() < 0.3:
            args["view_range"] = [rng.randint(1, 50), rng.randint(-1, 90)]
        return ToolCall("str_replace_editor", args)
    return ToolCall(
        *(
            ("think", {"thought": random_text(rng)})
            if kind == 2
            else ("finish", {"message": random_text(rng)})
        )
    )


def render(fmt: str, calls: list[ToolCall], rng: random.Random) -> Completion:
    """The reply a model would give with `calls` in `fmt` (auto: native, or any text format)."""
    if fmt == "auto":
        fmt = rng.choice(["native", "mistral", "xml", "hermes"])
    if fmt == "native":
        return Completion(
            content=rng.choice([None, "", "Looking."]), tool_calls=[render_call(fmt, c) for c in calls]
        )
    text = "\n".join(str(render_call(fmt, c)) for c in calls)
    return Completion(
        content=rng.choice(["", "I will look at the file.\n"]) + text + rng.choice(["", "</s>", "\n"])
    )


def mutate(rng: random.Random, text: str) -> str:
    """`text` after 1-4 random truncations, deletions, insertions, duplications or character swaps."""
    for _ in range(rng.randint(1, 4)):
        i = rng.randint(0, len(text))
        j = rng.randint(i, min(len(text), i + 40))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:i] + rng.choice(PIECES + HOSTILE_CHARS) + text[i:]
        elif op == 3:
            text = text[:i] + text[i:j] * rng.randint(2, 5) + text[j:]
        else:
            text = text[:i] + rng.choice(HOSTILE_CHARS) + text[j:]
    return text


def nested(depth: int, leaf: Any = 1) -> Any:
    """A list nested `depth` deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_json(rng: random.Random, depth: int) -> str:
    return rng.choice(
        ["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth, '[{"a":' * depth]
    )


class Case:
    """One generated reply: what it is, the completion, and what parsing must give (None: calls or error)."""

    def __init__(self, kind: str, completion: Completion, expect: list[ToolCall] | str | None = None):
        self.kind, self.completion = kind, completion
        # A list: the calls a valid reply must parse to. "error": FormatError is the only right answer.
        self.expect = expect


def native_shapes(rng: random.Random, calls: list[ToolCall]) -> Completion:
    """tool_calls as a hostile or broken server might send them."""
    shape = rng.randrange(4)
    if shape == 0:  # not a list at all
        tool_calls: Any = rng.choice(
            [{"function": {"name": "think"}}, "execute_bash", 7, 2.5, True, ("x",), b"x"]
        )
        return Completion(content=None, tool_calls=tool_calls)
    entries: list[Any] = [render_call("native", c) for c in calls]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(entries))
        entry = entries[i]
        if shape == 1 or not isinstance(entry, dict):
            entries[i] = rng.choice(ODD_VALUES)
        elif shape == 2:
            entry[rng.choice(["function", "id", "type"])] = rng.choice(ODD_VALUES)
        elif isinstance(entry.get("function"), dict):
            entry["function"][rng.choice(["name", "arguments"])] = rng.choice(ODD_VALUES)
    content = rng.choice([None, "text", ["parts"], {"type": "text"}, 3, [{"type": "text", "text": "hi"}]])
    return Completion(content=content, tool_calls=entries)


def deep_case(fmt: str, rng: random.Random) -> Case:
    depth = rng.choice([MAX_JSON_DEPTH + 1, 1000, 20_000, 100_000])
    blob = deep_json(rng, depth)
    if fmt in ("native", "auto") and rng.random() < 0.5:
        # A deep blob as a JSON string value is just text: only real nesting must be refused. Python
        # structures stay at most 5000 deep: building deeper ones is slow and tests nothing more.
        shapes = [lambda: blob, lambda: {"command": nested(min(depth, 5000))}, lambda: nested(min(depth, 5000)),
                  lambda: {"a": {"command": blob}}]  # fmt: skip
        args = rng.choice(shapes)()
        return Case(
            "deep",
            Completion(None, [{"id": "a", "function": {"name": "execute_bash", "arguments": args}}]),
            "error",
        )
    text = rng.choice([
        f'[TOOL_CALLS]execute_bash[ARGS]{{"command": {blob}}}', f"[TOOL_CALLS]{blob}", f"<tool_call>{blob}</tool_call>",
        f'<tool_call>{{"name": "think", "arguments": {{"thought": {blob}}}}}</tool_call>',
        "<function=str_replace_editor><parameter=command>view</parameter><parameter=path>/a</parameter>"
        f"<parameter=view_range>{blob}</parameter></function>",
    ])  # fmt: skip
    return Case("deep", Completion(text), "error")  # native: text is no call at all


def huge_case(fmt: str, rng: random.Random) -> Case:
    """Replies near and over the size caps, and shapes that are slow for a quadratic parser."""
    pick = rng.randrange(6)
    if pick == 0:  # one argument over the cap
        call = ToolCall("execute_bash", {"command": "x" * (MAX_REPLY_CHARS + 1)})
        return Case("huge", render(fmt, [call], rng), "error")
    if pick == 1:  # big but under the cap: parses as usual
        call = ToolCall("execute_bash", {"command": "echo " + "ab\n" * (MAX_REPLY_CHARS // 8)})
        return Case("huge", render(fmt, [call], rng), [call])
    if pick == 2:  # more calls than one reply may hold
        return Case(
            "huge", render(fmt, [ToolCall("think", {"thought": "t"})] * (MAX_CALLS + 1), rng), "error"
        )
    if pick == 3 and fmt != "native":  # a call followed by many end-of-turn tokens
        call = ToolCall("finish", {"message": "done"})
        base = render(fmt, [call], rng)
        return Case(
            "huge", Completion((base.content or "") + "</s>" * 200_000), [call] if fmt != "auto" else None
        )
    if pick == 4:  # many distinct parameters, each closed ambiguously
        text = "".join(f"<parameter=p{i}>v</parameter>x" for i in range(MAX_REPLY_CHARS // 64))
        return Case("huge", Completion("<function=think>" + text))
    unit = rng.choice(["<parameter=p>v</parameter>x", "</parameter>", "<function=", "[TOOL_CALLS]", "<tool_call>",
                       ";", "[TOOL_CALLS]think{", '{"a":"', "</s>", " " * 50])  # fmt: skip
    text = rng.choice(["", "<function=think><parameter=thought>", "[TOOL_CALLS]think[ARGS]", "<tool_call>"])
    return Case("huge", Completion(text + unit * (MAX_REPLY_CHARS // (2 * len(unit)))))


def generate(fmt: str, tools: list[ToolSpec], count: int = CASES_PER_FORMAT) -> Iterator[Case]:
    """`count` seeded replies for `fmt`, mixing valid, mutated and hostile ones."""
    rng = random.Random(f"{SEED}-{fmt}")
    for _ in range(count):
        calls = [random_call(rng) for _ in range(rng.randint(1, 3))]
        roll = rng.random()
        if roll < 0.15:
            yield Case("valid", render(fmt, calls, rng), calls)
        elif roll < 0.47:
            completion = render(fmt, calls, rng)
            if completion.tool_calls:
                for entry in completion.tool_calls:
                    entry["function"]["arguments"] = mutate(rng, entry["function"]["arguments"])
            else:
                completion.content = mutate(rng, completion.content or "")
            yield Case("mutated", completion)
        elif roll < 0.60:
            yield Case(
                "garbage",
                Completion("".join(rng.choice(PIECES + HOSTILE_CHARS) for _ in range(rng.randint(0, 30)))),
            )
        elif roll < 0.72:
            yield Case("native-shapes", native_shapes(rng, calls))
        elif roll < 0.77:
            yield deep_case(fmt, rng)
        elif roll < 0.782:  # few: each costs milliseconds, the rest microseconds
            yield huge_case(fmt, rng)
        elif roll < 0.90:
            name = rng.choice(
                ["execute_bsh", "", " ", "x" * 100_000, "\ud800", "名前", "think\x00", "Think", "<x>"]
            )
            calls[0] = ToolCall(name, calls[0].arguments, id="call_u")
            # `<function=>` is no call at all in xml, so the reply's other calls may still parse.
            yield Case("unknown-tool", render(fmt, calls, rng), None if name in ("", "<x>") else "error")
        else:
            # A lone surrogate is not text (it cannot be encoded to send back); a NUL is, so it passes.
            value = rng.choice(["\ud800", "\udfff", "\x00nul"])
            calls[0] = ToolCall("think", {"thought": f"a{value}b"}, id="call_h")
            yield Case("hostile-chars", render(fmt, calls, rng), calls if value == "\x00nul" else "error")


def check(fmt: str, case: Case, tools: list[ToolSpec]) -> str | None:
    """Run one case; the uncaught exception's type name, or None. Asserts everything else."""
    parser = get_format(fmt)
    try:
        calls = parser.parse(case.completion, tools)
    except FormatError as err:
        message = str(err)
        assert message and len(message) <= 4000, (case.kind, message[:200])
        message.encode("utf-8")  # shown to the model, so sent to the server: must be valid text
        assert case.expect is None or case.expect == "error", (case.kind, message)
        calls, observations = [], [Observation(message, is_error=True)]
    except Exception as err:  # the figure this test exists for
        return f"{type(err).__name__} ({case.kind})"
    else:
        assert case.expect != "error", (case.kind, calls)
        names = {spec.name for spec in tools}
        assert calls and all(c.name in names and isinstance(c.arguments, dict) for c in calls)
        json.dumps([(c.id, c.name, c.arguments, c.raw) for c in calls], ensure_ascii=False).encode("utf-8")
        if isinstance(case.expect, list):
            assert [(c.name, c.arguments) for c in calls] == [(e.name, e.arguments) for e in case.expect], (
                case.kind
            )
        observations = [Observation("ok") for _ in calls]
    messages = parser.history(case.completion, calls, observations)
    assert messages and messages[0]["role"] == "assistant"
    # What the model client sends next: JSON, encoded as UTF-8 (httpx does exactly this).
    json.dumps(messages, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return None


def test_no_reply_makes_a_parser_raise_anything_but_format_error(tools):
    uncaught: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    slowest = (0.0, "")
    started = time.monotonic()
    for fmt in FORMAT_NAMES:
        for n, case in enumerate(generate(fmt, tools)):
            kinds[case.kind] += 1
            t0 = time.monotonic()
            failure = check(fmt, case, tools)
            elapsed = time.monotonic() - t0
            slowest = max(slowest, (elapsed, f"{fmt} case {n} ({case.kind})"))
            if failure:
                uncaught[f"{fmt}: {failure}"] += 1
    total = sum(kinds.values())
    print(f"\nformat fuzz: {total} cases ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
          f"{sum(uncaught.values())} uncaught exceptions, {time.monotonic() - started:.1f} s, "
          f"slowest {slowest[0]:.2f} s ({slowest[1]})")  # fmt: skip
    assert total >= 5000
    assert not uncaught, dict(uncaught)
    assert slowest[0] < SLOWEST_CASE_S, slowest


def test_generation_is_reproducible(tools):
    def digest(case: Case) -> tuple[str, int]:
        return case.kind, hash(str(case.completion.content))

    first = [digest(c) for c in generate("xml", tools, 400)]
    assert first == [digest(c) for c in generate("xml", tools, 400)]
    assert len({content for _, content in first}) > 200


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_valid_replies_parse_to_the_calls_they_render(fmt, tools):
    rng = random.Random(f"{SEED}-valid-{fmt}")
    for _ in range(200):
        calls = [random_call(rng) for _ in range(rng.randint(1, 3))]
        parsed = get_format(fmt).parse(render(fmt, calls, rng), tools)
        assert [(c.name, c.arguments) for c in parsed] == [(c.name, c.arguments) for c in calls]
