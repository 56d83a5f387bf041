"""Gate 5: the full acceptance test. The whole test split of the tool-calling suite in the format to be
deployed (overall at least `overall_min`, no category under its minimum), the model's size on disk and its
mean seconds per query against ceilings, and an optional GGUF export (llama.cpp's converter, then its
quantiser) whose size is reported; the export is skipped, with the reason, where the tools are absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.formats.registry import FORMAT_NAMES
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.suite import load_suite
from devloop.gate.tools import evaluate, open_model, select, table_markdown
from devloop.models import ModelError

# Where llama.cpp's checkout is looked for when the config names none.
LLAMA_CPP_ENV = "DEVLOOP_LLAMA_CPP"


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
    gguf_type: str = "f16"  # the converter's --outtype
    quantize: str | None = None  # e.g. "Q4_K_M", with llama.cpp's llama-quantize
    llama_cpp: str | None = None  # llama.cpp checkout (convert_hf_to_gguf.py, build/bin/llama-quantize)


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def run_full_gate(settings: FullSettings) -> GateResult:
    suite = load_suite(Path(settings.suite) if settings.suite else None)
    minimums = {**suite.minimums, **settings.minimums}
    queries = select(suite, "test")
    result = GateResult(gate=5, name="full", versions=library_versions())
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
        _export(settings, result)
    return result


def _llama_cpp(settings: FullSettings) -> Path | None:
    found = settings.llama_cpp or os.environ.get(LLAMA_CPP_ENV)
    return Path(found) if found else None


def _export(settings: FullSettings, result: GateResult) -> None:
    """GGUF export with llama.cpp's converter (which reads the weights through the `gguf` package)."""
    weights = Path(settings.weights or "")
    if settings.weights is None or not weights.is_dir():
        result.checks.append(Check("GGUF export", None, "skipped: only a transformers directory is exported"))
        return
    root = _llama_cpp(settings)
    converter = root / "convert_hf_to_gguf.py" if root else None
    if converter is None or not converter.is_file():
        why = (
            f"no convert_hf_to_gguf.py in {root}" if root else f"no llama.cpp checkout (set {LLAMA_CPP_ENV})"
        )
        result.checks.append(Check("GGUF export", None, f"skipped: {why}"))
        return
    try:
        import gguf  # noqa: F401  # the converter's own dependency; say so before it fails inside
    except ImportError:
        result.checks.append(Check("GGUF export", None, "skipped: the gguf package is not installed"))
        return
    out = Path(str(settings.gguf_out))
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    command = [
        sys.executable,
        str(converter),
        str(weights),
        "--outfile",
        str(out),
        "--outtype",
        settings.gguf_type,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        result.checks.append(Check("GGUF export", False, f"converter exit {done.returncode}: {tail[0]}"))
        return
    exported = {"path": str(out), "size_mb": size_mb(out), "seconds": time.perf_counter() - started}
    result.details["gguf"] = exported
    result.checks.append(Check("GGUF export", True, f"{out.name}: {exported['size_mb']:.1f} MiB"))
    if settings.quantize:
        _quantize(settings, root, out, result)


def _quantize(settings: FullSettings, root: Path | None, source: Path, result: GateResult) -> None:
    tool = next(
        (
            p
            for p in (
                (root / "build" / "bin" / "llama-quantize") if root else None,
                shutil.which("llama-quantize"),
            )
            if p
        ),
        None,
    )
    if tool is None or not Path(tool).is_file():
        result.checks.append(Check("quantise", None, "skipped: llama-quantize not found"))
        return
    out = source.with_name(f"{source.stem}-{settings.quantize}.gguf")
    done = subprocess.run(
        [str(tool), str(source), str(out), str(settings.quantize)], capture_output=True, text=True
    )
    if done.returncode != 0 or not out.is_file():
        result.checks.append(Check("quantise", False, f"llama-quantize exit {done.returncode}"))
        return
    result.details["quantised"] = {"path": str(out), "size_mb": size_mb(out), "type": settings.quantize}
    result.checks.append(Check("quantise", True, f"{out.name}: {size_mb(out):.1f} MiB"))


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
        "quantize",
        "llama_cpp",
    ):
        if key in values and not isinstance(values[key], str):
            raise GateInputError(f"{where}: gate5.{key}: a string")
    if ("model" in values) == ("weights" in values):
        raise GateInputError(f"{where}: gate5: give exactly one of model or weights")
    if values.get("format", "mistral") not in FORMAT_NAMES:
        raise GateInputError(f"{where}: gate5.format: one of {', '.join(FORMAT_NAMES)}")
    for key in ("overall_min", "max_size_mb", "max_mean_s"):
        value = values.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0
        ):
            raise GateInputError(f"{where}: gate5.{key}: a non-negative number")
    for key in ("max_tokens", "batch_size"):
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
