"""Gate 2: generation time on representative queries against a served model, through devloop's client.

Mean and p90 of the client-measured latency (request to parsed reply, retries included) are checked
against absolute ceilings and, when a baseline mean was recorded, against `max_ratio` times it. The
baseline is a number (`baseline_mean_s`) or the gate2 JSON of a run on the current model (`baseline`), so
both are measured by the same code on the same machine.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.models import ModelError
from devloop.types import SamplingParams

# Short coding requests, the kind an agent sends between tool calls.
DEFAULT_PROMPTS = (
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Explain in two sentences what `git rebase --onto` does.",
    "Write a pytest test for a function `slugify(text)` that lowercases and joins words with '-'.",
    "Fix this code: `def mean(xs): return sum(xs) / len(xs)` crashes on an empty list.",
    "Write a shell one-liner that counts Python files under src/.",
)


@dataclass
class LatencySettings:
    model: str | None = None  # a served model spec
    weights: str | None = None  # or local weights (a transformers directory or a .gguf file)
    base_url: str | None = None
    prompts: tuple[str, ...] = DEFAULT_PROMPTS
    max_tokens: int = 256
    max_mean_s: float | None = None
    max_p90_s: float | None = None
    baseline_mean_s: float | None = None
    baseline: str | None = (
        None  # a gate2-latency.json recorded on the current model: its mean is the baseline
    )
    max_ratio: float = 1.0


def recorded_baseline(path: Path) -> dict[str, Any]:
    """{mean_s, p90_s, model} from a gate2 JSON; a file that is not one is named with the field missing."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise GateInputError(f"gate2.baseline: cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise GateInputError(f"gate2.baseline: {path}: not JSON ({e})") from e
    details = data.get("details") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("gate") != 2 or not isinstance(details, dict):
        raise GateInputError(f"gate2.baseline: {path}: not a gate2-latency.json (no gate 2 details)")
    mean = details.get("mean_s")
    if not isinstance(mean, (int, float)) or isinstance(mean, bool) or mean <= 0:
        raise GateInputError(f"gate2.baseline: {path}: details.mean_s is missing (did that run answer?)")
    return {
        "mean_s": float(mean),
        "p90_s": details.get("p90_s"),
        "model": details.get("model"),
        "file": str(path),
    }


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def run_latency_gate(settings: LatencySettings) -> GateResult:
    if not settings.prompts:
        raise GateInputError("gate2.prompts: at least one prompt is needed")
    if settings.baseline is not None and settings.baseline_mean_s is not None:
        raise GateInputError("gate2: give baseline (a recorded JSON) or baseline_mean_s, not both")
    recorded = recorded_baseline(Path(settings.baseline)) if settings.baseline is not None else None
    from devloop.gate.tools import open_model

    model, spec = open_model(settings.model, settings.weights, settings.base_url, 1, "gate2")
    result = GateResult(gate=2, name="latency", versions=library_versions())
    times: list[float] = []
    params = SamplingParams(temperature=0.0, max_tokens=settings.max_tokens)
    try:
        for prompt in settings.prompts:
            try:
                completion = model.complete([{"role": "user", "content": prompt}], None, params)
            except ModelError as e:
                result.checks.append(Check("every query answered", False, f"{prompt[:40]!r}: {e}"))
                break
            times.append(completion.latency_s)
    finally:
        model.close()
    if not times:
        return result
    mean, tail = statistics.fmean(times), p90(times)
    result.details.update({"model": spec, "queries": len(times), "times_s": times})
    result.details.update({"mean_s": mean, "p90_s": tail})
    if settings.max_mean_s is not None:
        result.checks.append(
            Check("mean", mean <= settings.max_mean_s, f"{mean:.3f} s (max {settings.max_mean_s} s)")
        )
    if settings.max_p90_s is not None:
        result.checks.append(
            Check("p90", tail <= settings.max_p90_s, f"{tail:.3f} s (max {settings.max_p90_s} s)")
        )
    baseline_mean = recorded["mean_s"] if recorded else settings.baseline_mean_s
    if recorded:
        result.details["baseline"] = recorded
    if baseline_mean is not None:
        ratio = mean / baseline_mean
        result.details["ratio_to_baseline"] = ratio
        limit = f"{ratio:.2f}x the baseline's {baseline_mean:.3g} s (max {settings.max_ratio}x)"
        result.checks.append(Check("against baseline", ratio <= settings.max_ratio, limit))
    return result


def settings_from_table(where: str, table: dict[str, Any]) -> LatencySettings:
    """LatencySettings from a [gate2] table; `where` names the file for error lines."""
    known = set(LatencySettings.__dataclass_fields__)
    unknown = set(table) - known
    if unknown:
        raise GateInputError(f"{where}: gate2: unknown key {sorted(unknown)[0]!r}")
    if not isinstance(table.get("model", table.get("weights")), str):
        raise GateInputError(
            f"{where}: gate2.model: a model spec (openai/NAME, scripted/PATH) or gate2.weights is required"
        )
    if "model" in table and "weights" in table:
        raise GateInputError(f"{where}: gate2: give exactly one of model or weights")
    values = dict(table)
    prompts = values.get("prompts", DEFAULT_PROMPTS)
    if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise GateInputError(f"{where}: gate2.prompts: a non-empty list of strings")
    values["prompts"] = tuple(prompts)
    if "baseline" in values and not isinstance(values["baseline"], str):
        raise GateInputError(f"{where}: gate2.baseline: a path to a gate2-latency.json")
    if "baseline" in values and "baseline_mean_s" in values:
        raise GateInputError(f"{where}: gate2: give baseline or baseline_mean_s, not both")
    for key in ("max_mean_s", "max_p90_s", "baseline_mean_s", "max_ratio"):
        value = values.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
        ):
            raise GateInputError(f"{where}: gate2.{key}: a positive number of seconds")
    if not isinstance(values.get("max_tokens", 256), int):
        raise GateInputError(f"{where}: gate2.max_tokens: an integer")
    return LatencySettings(**values)
