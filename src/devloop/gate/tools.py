"""Gate 3: zero-shot tool calling. devloop's tool-calling suite is put to the model once per tool-call
format (each query: the format's system prompt or API tools, one user request, one reply), every reply is
graded on tool name, argument schema and values, and each format gets a per-category table against the
categories' minimums. The gate passes when some format (or, with `require = "all"`, every format) meets
every minimum; the model is reached through devloop's client or loaded from local weights."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.formats.registry import FORMAT_NAMES, get_format
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.suite import Grade, Query, Suite, category_table, grade, load_suite
from devloop.models import ModelError
from devloop.models.providers import get_model
from devloop.types import FormatError, SamplingParams

SYSTEM = (
    "You are a coding assistant working in a software repository. When a request needs the repository "
    "(its files, its code, its git history, its tests), call the right tool with the right arguments; "
    "when it does not, answer directly without calling a tool."
)


@dataclass
class ToolsSettings:
    model: str | None = None  # a served model spec
    weights: str | None = None  # local weights: a transformers directory or a .gguf file
    base_url: str | None = None
    formats: tuple[str, ...] = FORMAT_NAMES
    suite: str | None = None  # a suite JSON file; default: the shipped one
    split: str = "test"
    per_category: int | None = None  # only the first N queries of each category (a quick look)
    minimums: dict[str, float] = field(default_factory=dict)  # overrides the suite's
    require: str = "any"  # "any": some format meets every minimum; "all": every format does
    max_tokens: int = 256
    batch_size: int = 8


def select(suite: Suite, split: str, per_category: int | None = None) -> list[Query]:
    queries = suite.split(split)
    if per_category is not None:
        seen: dict[str, int] = {}
        kept = []
        for q in queries:
            seen[q.category] = seen.get(q.category, 0) + 1
            if seen[q.category] <= per_category:
                kept.append(q)
        queries = kept
    if not queries:
        raise GateInputError(f"suite {suite.name}: no queries in split {split!r}")
    return queries


def ask(
    model: Any, model_spec: str, format_name: str, suite: Suite, queries: list[Query], max_tokens: int
) -> list[tuple[Query, Grade, float]]:
    """Each query put to `model` in `format_name`, graded: (query, grade, seconds)."""
    fmt = get_format(format_name)
    system = SYSTEM if fmt.native else f"{SYSTEM}\n\n{fmt.render_tools(suite.tools)}"
    api_tools = [t.openai() for t in suite.tools] if fmt.native else None
    params = fmt.tune(SamplingParams(temperature=0.0, max_tokens=max_tokens), model_spec)
    conversations = [
        [{"role": "system", "content": system}, {"role": "user", "content": q.prompt}] for q in queries
    ]
    if hasattr(model, "complete_many"):
        completions = model.complete_many(conversations, api_tools, params)
    else:
        completions = [model.complete(c, api_tools, params) for c in conversations]
    rows = []
    for query, completion in zip(queries, completions, strict=True):
        try:
            calls = fmt.parse(completion, suite.tools)
        except FormatError as e:
            result = grade(query, None, suite.tools, str(e).splitlines()[0][:200])
        else:
            result = grade(query, calls, suite.tools)
        result.reply = (completion.content or "")[:400]
        rows.append((query, result, completion.latency_s))
    return rows


def format_report(rows: list[tuple[Query, Grade, float]], minimums: dict[str, float]) -> dict[str, Any]:
    table = category_table(((q, g) for q, g, _ in rows), minimums)
    table["ok"] = all(c["ok"] for c in table["categories"].values())
    table["mean_s"] = statistics.fmean(s for _, _, s in rows) if rows else 0.0
    stages: dict[str, int] = {}
    for _, g, _ in rows:
        stages[g.stage] = stages.get(g.stage, 0) + 1
    table["stages"] = stages
    table["failures"] = [
        {
            "id": q.id,
            "category": q.category,
            "stage": g.stage,
            "detail": g.detail,
            "calls": g.calls,
            "reply": g.reply,
        }
        for q, g, _ in rows
        if not g.ok
    ]
    return table


def table_markdown(per_format: dict[str, dict[str, Any]]) -> str:
    """Categories down, formats across: `passed/total` with a `!` below the minimum."""
    formats = list(per_format)
    categories = sorted({c for t in per_format.values() for c in t["categories"]})
    lines = [
        "| category | min | " + " | ".join(formats) + " |",
        "|---|---|" + "---|" * len(formats),
    ]
    for category in categories:
        cells = []
        minimum = 0.0
        for name in formats:
            cell = per_format[name]["categories"].get(category)
            if cell is None:
                cells.append("-")
                continue
            minimum = cell["minimum"]
            cells.append(f"{cell['passed']}/{cell['total']}{'' if cell['ok'] else ' !'}")
        lines.append(f"| {category} | {minimum:.0%} | " + " | ".join(cells) + " |")
    overall = [f"**{t['passed']}/{t['total']} ({t['overall']:.0%})**" for t in per_format.values()]
    lines.append("| overall | | " + " | ".join(overall) + " |")
    lines.append(
        "| mean s / query | | " + " | ".join(f"{t['mean_s']:.2f}" for t in per_format.values()) + " |"
    )
    return "\n".join(lines)


def open_model(
    model: str | None, weights: str | None, base_url: str | None, batch_size: int, where: str
) -> tuple[Any, str]:
    """(model, spec) for a served model or local weights."""
    if (model is None) == (weights is None):
        raise GateInputError(f"{where}: give exactly one of model (a served model) or weights (local)")
    if weights is not None:
        from devloop.gate.local import LocalModel

        return LocalModel(Path(weights), batch_size=batch_size), f"local/{weights}"
    try:
        return get_model(str(model), base_url=base_url, max_retries=1), str(model)
    except ValueError as e:
        raise GateInputError(f"{where}.model: {e}") from e


def evaluate(
    model: Any, spec: str, formats: Iterable[str], suite: Suite, queries: list[Query], max_tokens: int,
    minimums: dict[str, float],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """format -> its report (per-category table, failures, mean seconds per query)."""
    per_format: dict[str, dict[str, Any]] = {}
    for name in formats:
        started = time.perf_counter()
        if hasattr(model, "tools_via"):
            model.tools_via = "chat template (tools=)"
        rows = ask(model, spec, name, suite, queries, max_tokens)
        per_format[name] = format_report(rows, minimums)
        if get_format(name).native and hasattr(model, "tools_via"):
            # Local weights whose template drops tools= get them in the system turn: say which it was.
            per_format[name]["tools_via"] = model.tools_via
        per_format[name]["wall_s"] = time.perf_counter() - started
    return per_format


def run_tools_gate(settings: ToolsSettings) -> GateResult:
    for name in settings.formats:
        try:
            get_format(name)
        except ValueError as e:
            raise GateInputError(f"gate3.formats: {e}") from e
    if settings.require not in ("any", "all"):
        raise GateInputError("gate3.require: 'any' or 'all'")
    suite = load_suite(Path(settings.suite) if settings.suite else None)
    minimums = {**suite.minimums, **settings.minimums}
    queries = select(suite, settings.split, settings.per_category)
    result = GateResult(gate=3, name="tools", versions=library_versions())
    model, spec = open_model(
        settings.model, settings.weights, settings.base_url, settings.batch_size, "gate3"
    )
    try:
        per_format = evaluate(model, spec, settings.formats, suite, queries, settings.max_tokens, minimums)
    except ModelError as e:
        result.checks.append(Check("every query answered", False, str(e)))
        return result
    finally:
        model.close()
    load_s = getattr(model, "load_s", None)
    result.details.update({"model": spec, "suite": suite.name, "split": settings.split})
    result.details.update({"queries": len(queries), "minimums": minimums, "per_format": per_format})
    if load_s is not None:
        result.details["load_s"] = load_s
    result.details["table_md"] = table_markdown(per_format)
    summary = []
    for name, table in per_format.items():
        low = [
            f"{c} {v['rate']:.0%} < {v['minimum']:.0%}" for c, v in table["categories"].items() if not v["ok"]
        ]
        summary.append(f"{name} {table['overall']:.0%}" + (f" ({', '.join(low)})" if low else ""))
    passing = [name for name, table in per_format.items() if table["ok"]]
    result.details["passing_formats"] = passing
    wanted = bool(passing) if settings.require == "any" else len(passing) == len(per_format)
    what = "some format" if settings.require == "any" else "every format"
    result.checks.append(Check(f"{what} meets every category minimum", wanted, "; ".join(summary)))
    return result


def settings_from_table(where: str, table: dict[str, Any]) -> ToolsSettings:
    unknown = set(table) - set(ToolsSettings.__dataclass_fields__)
    if unknown:
        raise GateInputError(f"{where}: gate3: unknown key {sorted(unknown)[0]!r}")
    values = dict(table)
    for key in ("model", "weights", "base_url", "suite", "split", "require"):
        if key in values and not isinstance(values[key], str):
            raise GateInputError(f"{where}: gate3.{key}: a string")
    if ("model" in values) == ("weights" in values):
        raise GateInputError(f"{where}: gate3: give exactly one of model or weights")
    formats = values.get("formats", FORMAT_NAMES)
    if not isinstance(formats, (list, tuple)) or not formats or not all(isinstance(f, str) for f in formats):
        raise GateInputError(f"{where}: gate3.formats: a non-empty list of format names")
    for name in formats:
        if name.strip().lower() not in FORMAT_NAMES:
            raise GateInputError(
                f"{where}: gate3.formats: unknown format {name!r} ({', '.join(FORMAT_NAMES)})"
            )
    values["formats"] = tuple(formats)
    for key in ("per_category", "max_tokens", "batch_size"):
        if key in values and (
            not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1
        ):
            raise GateInputError(f"{where}: gate3.{key}: a positive integer")
    minimums = values.get("minimums", {})
    if not isinstance(minimums, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in minimums.values()
    ):
        raise GateInputError(f"{where}: gate3.minimums: a table of category = rate in 0..1")
    values["minimums"] = {str(k): float(v) for k, v in minimums.items()}
    return ToolsSettings(**values)
