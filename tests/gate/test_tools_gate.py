"""Gate 3 on the shipped tool-calling suite, against the scripted OpenAI-compatible server reached by
devloop's client: replies written to pass some queries and fail others, in a text and an API format."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devloop.cli import app
from devloop.formats.registry import get_format
from devloop.gate.matrix import load_config, run_gates
from devloop.gate.result import GateInputError
from devloop.gate.suite import Query, grade, load_suite, value_matches
from devloop.gate.tools import ToolsSettings, run_tools_gate
from devloop.types import ToolCall

SUITE = load_suite()
CATEGORIES = ("direct_answer", "file_reading", "code_search", "git", "tests", "argument_extraction",
              "multi_tool", "discrimination")  # fmt: skip


def _concrete(value: Any) -> Any:
    if isinstance(value, dict) and "contains" in value:
        return value["contains"]
    if isinstance(value, dict) and "one_of" in value:
        return value["one_of"][0]
    return value


def _right(query: Query) -> list[ToolCall]:
    return [
        ToolCall(c["name"], {k: _concrete(v) for k, v in c.get("arguments", {}).items()}, id=f"call{n:05d}")
        for n, c in enumerate(query.expect)
    ]


# Wrong replies, by query id: what the model calls instead (None: prose, no call).
WRONG_TEXT: dict[str, list[ToolCall] | None] = {
    "git-1": [ToolCall("git_log", {})],  # the wrong git tool
    "git-2": [ToolCall("git_diff", {})],
    "git-3": None,  # answers in prose where a call is needed
    "direct-1": [ToolCall("read_file", {"path": "x.py"})],  # a call for a direct question
    "args-1": [ToolCall("read_file", {"path": "src/server.py", "start_line": 10, "end_line": 26})],
    "search-1": [ToolCall("search_code", {"query": "parse_config", "glob": "*.py"})],  # schema
}
WRONG_NATIVE: dict[str, list[ToolCall] | None] = {"multi-1": [ToolCall("read_file", {"path": "setup.py"})]}


def _entry(format_name: str, calls: list[ToolCall] | None) -> dict[str, Any]:
    fmt = get_format(format_name)
    if not calls:
        return {"role": "assistant", "content": "Here is the answer, no tool needed."}
    if fmt.native:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [fmt.render_call(c, n) for n, c in enumerate(calls)],
        }
    return {
        "role": "assistant",
        "content": "Let me look.\n" + "\n".join(str(fmt.render_call(c)) for c in calls),
    }


def _script(tmp_path: Path, plan: list[tuple[str, dict[str, list[ToolCall] | None]]]) -> Path:
    entries = []
    for format_name, wrong in plan:
        for query in SUITE.split("test"):
            entries.append(_entry(format_name, wrong[query.id] if query.id in wrong else _right(query)))
    path = tmp_path / "tools.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_shipped_suite_has_forty_queries_in_eight_categories() -> None:
    test = SUITE.split("test")
    assert len(test) >= 40 and set(Counter(q.category for q in test)) == set(CATEGORIES)
    assert min(Counter(q.category for q in test).values()) >= 5
    assert SUITE.split("train") and SUITE.split("validation")
    assert not {q.prompt for q in test} & {q.prompt for q in SUITE.split("train")}


def test_grader_stages() -> None:
    query = next(q for q in SUITE.queries if q.id == "args-2")
    good = [ToolCall("git_log", {"max_count": 5, "path": "./docs/index.md"})]
    assert grade(query, good, SUITE.tools).ok
    assert (
        grade(query, [ToolCall("git_log", {"max_count": "5", "path": "docs/index.md"})], SUITE.tools).stage
        == "schema"
    )
    assert grade(query, [ToolCall("git_show", {"ref": "HEAD"})], SUITE.tools).stage == "name"
    assert (
        grade(query, [ToolCall("git_log", {"max_count": 3, "path": "docs/index.md"})], SUITE.tools).stage
        == "value"
    )
    assert grade(query, [ToolCall("nope", {})], SUITE.tools).stage == "name"
    assert grade(query, None, SUITE.tools, "no tool call").stage == "format"
    direct = next(q for q in SUITE.queries if q.id == "direct-1")
    assert grade(direct, None, SUITE.tools).ok and not grade(direct, good, SUITE.tools).ok
    assert value_matches("query", {"contains": "TODO"}, "TODO:") and not value_matches(
        "query", {"contains": "x"}, 3
    )


def test_per_category_figures_per_format(tmp_path: Path) -> None:
    script = _script(tmp_path, [("mistral", WRONG_TEXT), ("native", WRONG_NATIVE)])
    result = run_tools_gate(ToolsSettings(model=f"scripted/{script}", formats=("mistral", "native")))
    mistral, native = (result.details["per_format"][f] for f in ("mistral", "native"))
    rates = {c: (v["passed"], v["total"]) for c, v in mistral["categories"].items()}
    assert rates == {
        "argument_extraction": (4, 5), "code_search": (4, 5), "direct_answer": (4, 5), "discrimination": (5, 5),
        "file_reading": (5, 5), "git": (2, 5), "multi_tool": (5, 5), "tests": (5, 5),
    }  # fmt: skip
    assert (mistral["passed"], mistral["total"], mistral["ok"]) == (34, 40, False)
    assert not mistral["categories"]["git"]["ok"] and mistral["categories"]["git"]["rate"] == pytest.approx(
        0.4
    )
    stages = {f["id"]: f["stage"] for f in mistral["failures"]}
    assert stages == {"git-1": "name", "git-2": "name", "git-3": "format", "direct-1": "count",
                      "args-1": "value", "search-1": "schema"}  # fmt: skip
    assert (native["passed"], native["ok"]) == (39, True) and native["categories"]["multi_tool"][
        "passed"
    ] == 4
    assert result.status == "pass" and result.details["passing_formats"] == ["native"]
    assert "| git | 60% | 2/5 ! | 5/5 |" in result.details["table_md"]
    assert "transformers" in result.versions or "devloop" in result.versions
    strict = run_tools_gate(
        ToolsSettings(model=f"scripted/{script}", formats=("mistral", "native"), require="all")
    )
    assert strict.status == "fail" and "git 40% < 60%" in strict.failures[0].detail


def test_gate_run_tools_is_a_caution(tmp_path: Path) -> None:
    _script(tmp_path, [("mistral", WRONG_TEXT)])
    config = tmp_path / "gates.toml"
    config.write_text('[gate3]\nmodel = "scripted/tools.jsonl"\nformats = ["mistral"]\n')
    decision = run_gates(load_config(config), tmp_path / "out")
    assert decision.exit_code == 3 and decision.results[0].status == "fail"
    report = (tmp_path / "out" / "decision.md").read_text()
    assert "proceed with caution" in report and "| git | 60% | 2/5 ! |" in report
    saved = json.loads((tmp_path / "out" / "gate3-tools.json").read_text())
    assert saved["details"]["per_format"]["mistral"]["passed"] == 34
    replies = {f["id"]: f["reply"] for f in saved["details"]["per_format"]["mistral"]["failures"]}
    assert replies["git-3"] == "Here is the answer, no tool needed."


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('formats = ["mistral"]\n', "exactly one of model or weights"),
        ('model = "scripted/x"\nformats = ["json"]\n', "unknown format 'json'"),
        ('model = "scripted/x"\nminimums = {git = 2}\n', "gate3.minimums"),
        ('model = "scripted/x"\nshots = 2\n', "unknown key 'shots'"),
    ],
)
def test_bad_gate3_table(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "gates.toml"
    config.write_text("[gate3]\n" + table)
    with pytest.raises(GateInputError, match=message):
        load_config(config)


def test_cli_tools_subcommand(tmp_path: Path) -> None:
    script = _script(tmp_path, [("native", WRONG_NATIVE)])
    out = tmp_path / "out"
    done = CliRunner().invoke(
        app, ["gate", "tools", "--model", f"scripted/{script}", "--format", "native", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "native 98%" in done.output and (out / "gate3-tools.json").is_file()
    bad = CliRunner().invoke(app, ["gate", "tools", "--model", f"scripted/{script}", "--format", "json"])
    assert bad.exit_code == 2 and "json" in bad.output and "Traceback" not in bad.output


def test_local_weights_prefix_cache_matches_plain_generation(tiny_model: Path) -> None:
    """The shared-system-prompt cache is an optimisation only: greedy replies are the same without it."""
    from devloop.gate import local
    from devloop.types import SamplingParams

    model = local.LocalModel(tiny_model)
    system = {"role": "system", "content": "You are a coding assistant. " * 20}
    conversations = [[system, {"role": "user", "content": f"Read file {n}.py"}] for n in ("a", "bb", "ccc")]
    params = SamplingParams(temperature=0.0, max_tokens=6)
    cached = [c.content for c in model.complete_many(conversations, None, params)]
    plain = [model.complete(c, None, params).content for c in conversations]
    assert cached == plain and len(set(map(len, cached))) >= 1
    assert local._common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2


def test_local_native_tools_reach_the_model_when_the_template_ignores_them(tiny_model: Path) -> None:
    """A chat template that drops tools= (SmolLM2's) would leave the native format without tools: they go
    in the system turn instead; a template that renders them is used as it is."""
    from transformers import AutoTokenizer

    from devloop.gate import local

    tools = [t.openai() for t in load_suite(None).tools]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Read a.py"}]
    plain = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    aware = "{% if tools %}TOOLS:{{ tools | length }}\n{% endif %}" + plain
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenizer.chat_template = plain
    model = local.LocalModel.wrap(tokenizer, None, "cpu")
    prompt = model.prompt(messages, tools)
    assert "<tools>" in prompt and '"read_file"' in prompt and "<tool_call>" in prompt
    assert prompt.startswith("<system>Be brief.") and "system prompt" in model.tools_via
    assert "<tools>" not in model.prompt(messages, None)
    tokenizer.chat_template = aware
    model = local.LocalModel.wrap(tokenizer, None, "cpu")
    prompt = model.prompt(messages, tools)
    assert prompt.startswith(f"TOOLS:{len(tools)}") and "<tools>" not in prompt
    assert model.tools_via == "chat template (tools=)"
