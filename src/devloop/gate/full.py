"""Gate 5: the full acceptance test. Optionally Gate 4's LoRA at full scale first (`[gate5.train]`: the
whole data set, more steps; fused, saved and reloaded, divergence failing the gate), then the whole test
split of the tool-calling suite in the format to be deployed (overall at least `overall_min`, no category
under its minimum), the model's size on disk and its mean seconds per query against ceilings, and an
optional GGUF export (llama.cpp's converter, then its quantiser) whose size is reported; the export is
skipped, with the reason, where the tools are absent. `gguf_in_llama_cpp` also loads every exported file
in llama.cpp itself (the optional `llama` extra), checks its tokenizer and generates from it. The GGUF step is full_export.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.formats.registry import FORMAT_NAMES
from devloop.gate import gguf_export, llamacpp, lora
from devloop.gate.full_export import export_files, size_mb
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.suite import load_suite
from devloop.gate.tools import evaluate, open_model, select, table_markdown
from devloop.models import ModelError


@dataclass
class FullSettings:
    model: str | None = None
    weights: str | None = None
    base_url: str | None = None
    format: str = "mistral"
    suite: str | None = None
    overall_min: float = 0.85
    minimums: dict[str, float] = field(default_factory=dict)
    max_size_mb: float | None = None
    max_mean_s: float | None = None
    max_tokens: int = 256
    batch_size: int = 8
    gguf_out: str | None = None  # export the (transformers-directory) weights to this GGUF file
    gguf_type: str = "f16"  # its type: f32, f16, bf16 or a gguf-package quantisation (q8_0, ...)
    # More files next to it (NAME-Q8_0.gguf): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and BF16 are written by the
    # gguf package; others (Q4_K_M, ...) need llama.cpp's llama-quantize.
    quantize: str | list[str] | None = None
    gguf_score: bool = True  # reload every exported file through transformers and score it again
    gguf_per_category: int | None = None  # score the files on the first N queries of each category
    llama_cpp: str | None = None  # llama.cpp checkout: its converter writes the base file instead
    gguf_in_llama_cpp: bool = False  # also load and run each exported file in llama.cpp (llama-cpp-python)
    # Train first: a LoRA on `weights` (Gate 4's pipeline at full scale), fused into train.out_dir, which
    # is then the model tested, measured and exported.
    train: lora.LoraSettings | None = None


# Gate 4's checks that Gate 5's training keeps: the acceptance test replaces the held-out check.
TRAIN_CHECKS = (
    "training runs",
    "training loss falls",
    "no divergence",
    "fused model saved",
    "fused model reloads",
)


def run_full_gate(settings: FullSettings) -> GateResult:
    if settings.gguf_in_llama_cpp:
        llamacpp.require("gate5.gguf_in_llama_cpp")  # before any training or scoring, not after
    suite = load_suite(Path(settings.suite) if settings.suite else None)
    minimums = {**suite.minimums, **settings.minimums}
    queries = select(suite, "test")
    result = GateResult(gate=5, name="full", versions=library_versions())
    if settings.train is not None:
        merged = _train(settings.train, result)
        if merged is None:
            return result
        settings = dataclasses.replace(settings, weights=merged)
    model, spec = open_model(
        settings.model, settings.weights, settings.base_url, settings.batch_size, "gate5"
    )
    try:
        per_format = evaluate(model, spec, [settings.format], suite, queries, settings.max_tokens, minimums)
    except ModelError as e:
        result.checks.append(Check("every query answered", False, str(e)))
        return result
    finally:
        model.close()
    table = per_format[settings.format]
    result.details.update({"model": spec, "format": settings.format, "suite": suite.name})
    result.details.update({"queries": len(queries), "report": table, "table_md": table_markdown(per_format)})
    overall = table["overall"]
    result.checks.append(
        Check(
            "overall",
            overall >= settings.overall_min,
            f"{table['passed']}/{table['total']} = {overall:.0%} (min {settings.overall_min:.0%})",
        )
    )
    low = [f"{c} {v['rate']:.0%} < {v['minimum']:.0%}" for c, v in table["categories"].items() if not v["ok"]]
    result.checks.append(Check("no category under its minimum", not low, "; ".join(low) or "all met"))
    if settings.max_mean_s is not None:
        mean = table["mean_s"]
        result.checks.append(
            Check(
                "speed", mean <= settings.max_mean_s, f"{mean:.2f} s per query (max {settings.max_mean_s} s)"
            )
        )
    if settings.weights is not None:
        mb = result.details["size_mb"] = size_mb(Path(settings.weights))
        if settings.max_size_mb is not None:
            result.checks.append(
                Check(
                    "size", mb <= settings.max_size_mb, f"{mb:.1f} MiB on disk (max {settings.max_size_mb})"
                )
            )
    if settings.gguf_out is not None:
        export_files(settings, result, suite, queries, minimums)
    return result


def _train(train: lora.LoraSettings, result: GateResult) -> str | None:
    """Gate 4's LoRA pipeline at full scale on the base weights; the fused model's directory, or None
    when training failed (the failure is among `result`'s checks)."""
    trained = lora.run_lora_gate(train)
    for check in trained.checks:
        if check.name in TRAIN_CHECKS:
            result.checks.append(Check(f"training: {check.name}", check.ok, check.detail))
    keep = ("steps", "examples", "format", "train_s", "loss_curve", "eval_curve", "validation_loss_before",
            "validation_loss_after", "merged_dir", "held_out_before", "held_out_after")  # fmt: skip
    result.details["train"] = {
        "base": train.weights,
        **{k: trained.details[k] for k in keep if k in trained.details},
    }
    if "loss_curve_png" in trained.details:
        result.details["loss_curve_png"] = trained.details["loss_curve_png"]
    if result.failures:
        return None
    return str(trained.details["merged_dir"])


def _train_settings(where: str, values: dict[str, Any]) -> lora.LoraSettings:
    """[gate5.train]: Gate 4's keys, on gate5.weights as the base; paths relative to the config file."""
    train = values["train"]
    if not isinstance(train, dict):
        raise GateInputError(f"{where}: gate5.train: a table of Gate 4's keys ([gate5.train])")
    if "weights" not in values:
        raise GateInputError(f"{where}: gate5.train: needs gate5.weights (local weights to train)")
    if "weights" in train:
        raise GateInputError(f"{where}: gate5.train.weights: the base model is gate5.weights")
    # Defaults for a full-scale run: the fused model beside the config, no zero-shot contrast (Gate 3
    # measured it) and no held-out threshold (the acceptance test is the threshold).
    table = {"out_dir": "gate5-merged", "baseline": False, "min_accuracy": 0.0, **train}
    table["weights"] = values["weights"]
    if "suite" in values:
        table.setdefault("suite", values["suite"])
    table.setdefault(
        "format", values.get("format") if values.get("format") in lora.TRAIN_FORMATS else "mistral"
    )
    return lora.settings_from_table(Path(where).parent, where, table, section="gate5.train")


def settings_from_table(where: str, table: dict[str, Any]) -> FullSettings:
    unknown = set(table) - set(FullSettings.__dataclass_fields__)
    if unknown:
        raise GateInputError(f"{where}: gate5: unknown key {sorted(unknown)[0]!r}")
    values = dict(table)
    for key in (
        "model",
        "weights",
        "base_url",
        "format",
        "suite",
        "gguf_out",
        "gguf_type",
        "llama_cpp",
    ):
        if key in values and not isinstance(values[key], str):
            raise GateInputError(f"{where}: gate5.{key}: a string")
    if ("model" in values) == ("weights" in values):
        raise GateInputError(f"{where}: gate5: give exactly one of model or weights")
    if "train" in values:
        values["train"] = _train_settings(where, values)
    if values.get("format", "mistral") not in FORMAT_NAMES:
        raise GateInputError(f"{where}: gate5.format: one of {', '.join(FORMAT_NAMES)}")
    for key in ("overall_min", "max_size_mb", "max_mean_s"):
        value = values.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0
        ):
            raise GateInputError(f"{where}: gate5.{key}: a non-negative number")
    quantize = values.get("quantize")
    if quantize is not None and not (
        isinstance(quantize, str)
        or (isinstance(quantize, list) and all(isinstance(q, str) for q in quantize))
    ):
        raise GateInputError(f'{where}: gate5.quantize: a type name or a list of them (e.g. ["Q8_0"])')
    for key in ("gguf_score", "gguf_in_llama_cpp"):
        if key in values and not isinstance(values[key], bool):
            raise GateInputError(f"{where}: gate5.{key}: true or false")
    if values.get("gguf_in_llama_cpp"):
        if "gguf_out" not in values:
            raise GateInputError(f"{where}: gate5.gguf_in_llama_cpp: needs gguf_out (the file to run)")
        llamacpp.require(f"{where}: gate5.gguf_in_llama_cpp")
    if "gguf_type" in values and "llama_cpp" not in values:
        try:
            gguf_export.normalise_type(values["gguf_type"])
        except gguf_export.ExportError as e:
            raise GateInputError(f"{where}: gate5.gguf_type: {e}") from e
    for key in ("max_tokens", "batch_size", "gguf_per_category"):
        if key in values and (
            not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1
        ):
            raise GateInputError(f"{where}: gate5.{key}: a positive integer")
    minimums = values.get("minimums", {})
    if not isinstance(minimums, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in minimums.values()
    ):
        raise GateInputError(f"{where}: gate5.minimums: a table of category = rate in 0..1")
    values["minimums"] = {str(k): float(v) for k, v in minimums.items()}
    return FullSettings(**values)
