"""Gate 5: the full acceptance test. Optionally Gate 4's LoRA at full scale first (`[gate5.train]`: the
whole data set, more steps; fused, saved and reloaded, divergence failing the gate), then the whole test
split of the tool-calling suite in the format to be deployed (overall at least `overall_min`, no category
under its minimum), the model's size on disk and its mean seconds per query against ceilings, and an
optional GGUF export (llama.cpp's converter, then its quantiser) whose size is reported; the export is
skipped, with the reason, where the tools are absent. `gguf_in_llama_cpp` also loads every exported file
in llama.cpp itself (the optional `llama` extra), checks its tokenizer and generates from it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.formats.registry import FORMAT_NAMES, get_format
from devloop.gate import gguf_export, llamacpp, lora
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.gate.suite import Query, Suite, load_suite
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


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


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
        _export(settings, result, suite, queries, minimums)
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


def select_per_category(queries: list[Query], per_category: int | None) -> list[Query]:
    if per_category is None:
        return queries
    seen: dict[str, int] = {}
    kept = []
    for query in queries:
        seen[query.category] = seen.get(query.category, 0) + 1
        if seen[query.category] <= per_category:
            kept.append(query)
    return kept


def _llama_cpp(settings: FullSettings) -> Path | None:
    found = settings.llama_cpp or os.environ.get(LLAMA_CPP_ENV)
    return Path(found) if found else None


def quant_types(quantize: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`"Q8_0"`, `"Q8_0,Q4_0"` or a list: the extra GGUF types wanted, in order, without repeats."""
    if quantize is None:
        return []
    items = quantize.split(",") if isinstance(quantize, str) else list(quantize)
    seen: list[str] = []
    for item in (i.strip() for i in items):
        if item and item.upper() not in seen:
            seen.append(item.upper())
    return seen


def _export(
    settings: FullSettings, result: GateResult, suite: Suite, queries: list[Query], minimums: dict[str, float]
) -> None:
    """The GGUF files (the base type, then each quantisation), each reloaded through transformers'
    GGUF loader and scored again on the suite, with its size. Written by devloop's own writer on the
    `gguf` package, or by llama.cpp's converter where a checkout is named; a missing tool is a skip whose
    detail names it."""
    weights = Path(settings.weights or "")
    if settings.weights is None or not weights.is_dir():
        result.checks.append(Check("GGUF export", None, "skipped: only a transformers directory is exported"))
        return
    out = Path(str(settings.gguf_out))
    root = _llama_cpp(settings)
    files: list[dict[str, Any]] = []
    base = (
        _convert(settings, root, weights, out, result)
        if root
        else _write(weights, out, settings.gguf_type, result)
    )
    if base is None:
        return
    files.append(base)
    for kind in quant_types(settings.quantize):
        if kind.lower() == base["type"]:
            continue
        target = out.with_name(f"{out.stem}-{kind}.gguf")
        if kind.lower() in gguf_export.TYPES and not root:
            made = _write(weights, target, kind, result)
        else:
            made = _quantize(root, Path(base["path"]), target, kind, result)
        if made is not None:
            files.append(made)
    result.details["gguf"] = files
    if settings.gguf_score:
        scored = select_per_category(queries, settings.gguf_per_category)
        for made in files:
            _score(settings, made, suite, scored, minimums, result)
    if settings.gguf_in_llama_cpp:
        for made in files:
            _in_llama_cpp(settings, made, suite, queries, result)


def _in_llama_cpp(
    settings: FullSettings, made: dict[str, Any], suite: Suite, queries: list[Query], result: GateResult
) -> None:
    """One exported file in llama.cpp: it loads, splits the suite's texts into the directory tokenizer's
    ids, and generates greedily from the first query in the directory's chat template."""
    import importlib

    transformers: Any = importlib.import_module("transformers")
    label = f"GGUF {made['type'].upper()} runs in llama.cpp"
    reference = transformers.AutoTokenizer.from_pretrained(str(settings.weights), local_files_only=True)
    messages = [{"role": "user", "content": queries[0].prompt if queries else "Hello"}]
    if getattr(reference, "chat_template", None):
        prompt = str(reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    else:
        prompt = messages[0]["content"] + "\n"
    try:
        run = llamacpp.run_file(
            Path(made["path"]), reference, _texts(suite, queries), prompt, min(8, settings.max_tokens)
        )
    except GateInputError as e:
        result.checks.append(Check(label, False, str(e)))
        return
    made["llama_cpp"] = run.as_dict()
    ok = run.same_ids == run.texts and bool(run.tokens)
    rate = f"{len(run.tokens) / run.generate_s:.0f} tok/s" if run.generate_s > 0 else "-"
    detail = f"loads in {run.load_s:.2f} s, tokenizer same ids on {run.same_ids}/{run.texts} texts, "
    detail += f"{len(run.tokens)} greedy tokens ({rate})"
    result.checks.append(Check(label, ok, detail))


def _write(weights: Path, out: Path, kind: str, result: GateResult) -> dict[str, Any] | None:
    label = f"GGUF {kind.upper()}"
    try:
        made = gguf_export.export(weights, out, kind)
    except gguf_export.ExportError as e:
        result.checks.append(Check(label, None, f"skipped: {e}"))
        return None
    except Exception as e:  # noqa: BLE001 - a failed write is the gate's verdict, with its reason
        result.checks.append(
            Check(label, False, f"{out}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        )
        return None
    size = size_mb(weights)
    result.checks.append(
        Check(label, True, f"{out.name}: {made.size_mb:.1f} MiB ({made.size_mb / size:.0%} of the directory)")
    )
    return {**made.as_dict(), "writer": "devloop (gguf package)", "ratio_to_directory": made.size_mb / size}


def _convert(
    settings: FullSettings, root: Path, weights: Path, out: Path, result: GateResult
) -> dict[str, Any] | None:
    """llama.cpp's converter (it reads the weights through the `gguf` package too)."""
    label = f"GGUF {settings.gguf_type.upper()}"
    converter = root / "convert_hf_to_gguf.py"
    if not converter.is_file():
        result.checks.append(Check(label, None, f"skipped: no convert_hf_to_gguf.py in {root}"))
        return None
    reason = gguf_export.missing()
    if reason:
        result.checks.append(Check(label, None, f"skipped: {reason}"))
        return None
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
        result.checks.append(Check(label, False, f"converter exit {done.returncode}: {tail[0]}"))
        return None
    made = {"path": str(out), "type": settings.gguf_type.lower(), "size_mb": size_mb(out)}
    made.update({"seconds": time.perf_counter() - started, "writer": f"llama.cpp ({converter})"})
    result.checks.append(Check(label, True, f"{out.name}: {made['size_mb']:.1f} MiB"))
    return made


def _quantize(
    root: Path | None, source: Path, out: Path, kind: str, result: GateResult
) -> dict[str, Any] | None:
    label = f"GGUF {kind}"
    candidates = [root / "build" / "bin" / "llama-quantize"] if root else []
    found = shutil.which("llama-quantize")
    candidates += [Path(found)] if found else []
    tool = next((c for c in candidates if c.is_file()), None)
    if tool is None:
        where = f"in {root / 'build' / 'bin'} or on PATH" if root else "on PATH (or set DEVLOOP_LLAMA_CPP)"
        builtin = ", ".join(t.upper() for t in gguf_export.TYPES)
        result.checks.append(
            Check(label, None, f"skipped: {kind} needs llama.cpp's llama-quantize, not found {where}; "
                  f"the gguf package writes {builtin}")
        )  # fmt: skip
        return None
    started = time.perf_counter()
    done = subprocess.run([str(tool), str(source), str(out), kind], capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        result.checks.append(Check(label, False, f"llama-quantize exit {done.returncode}"))
        return None
    made = {"path": str(out), "type": kind.lower(), "size_mb": size_mb(out)}
    made.update({"seconds": time.perf_counter() - started, "writer": f"llama.cpp ({tool})"})
    result.checks.append(Check(label, True, f"{out.name}: {made['size_mb']:.1f} MiB"))
    return made


def _score(
    settings: FullSettings, made: dict[str, Any], suite: Suite, queries: list[Query],
    minimums: dict[str, float], result: GateResult,
) -> None:  # fmt: skip
    """Reload one exported file through transformers' GGUF loader, check its tokenizer gives the
    directory's token ids, and put the queries to it again."""
    from devloop.gate.local import LocalModel

    label = f"GGUF {made['type'].upper()} scores"
    path = Path(made["path"])
    try:
        started = time.perf_counter()
        local = LocalModel(path, batch_size=settings.batch_size, share=False)
        made["load_s"] = time.perf_counter() - started
    except GateInputError as e:
        result.checks.append(Check(label, False, f"reload: {e}"))
        return
    try:
        made["tokens_match"] = _same_tokens(Path(str(settings.weights)), local.tokenizer, suite, queries)
        table = evaluate(
            local, f"local/{path}", [settings.format], suite, queries, settings.max_tokens, minimums
        )
    except ModelError as e:
        result.checks.append(Check(label, False, str(e)))
        return
    finally:
        local.close()
    report = table[settings.format]
    made["score"] = {k: report[k] for k in ("passed", "total", "overall", "mean_s")}
    made["categories"] = {c: f"{v['passed']}/{v['total']}" for c, v in report["categories"].items()}
    made["failures"] = report["failures"]
    tokens = made["tokens_match"]
    ok = report["overall"] >= settings.overall_min and tokens["same"] == tokens["texts"]
    detail = (
        f"{report['passed']}/{report['total']} = {report['overall']:.0%} (min {settings.overall_min:.0%})"
    )
    detail += (
        f", {report['mean_s']:.2f} s/query, tokenizer same ids on {tokens['same']}/{tokens['texts']} texts"
    )
    result.checks.append(Check(label, ok, detail))


def _same_tokens(weights: Path, reloaded: Any, suite: Suite, queries: list[Query]) -> dict[str, int]:
    """How many of the suite's texts (its system prompt with the tools, every query) the reloaded
    tokenizer splits into the directory tokenizer's ids."""
    import importlib

    transformers: Any = importlib.import_module("transformers")
    original = transformers.AutoTokenizer.from_pretrained(str(weights), local_files_only=True)
    texts = _texts(suite, queries)
    same = sum(
        original(t, add_special_tokens=False)["input_ids"]
        == reloaded(t, add_special_tokens=False)["input_ids"]
        for t in texts
    )
    return {"texts": len(texts), "same": int(same)}


def _texts(suite: Suite, queries: list[Query]) -> list[str]:
    """Texts to tokenize both ways: the suite's system prompt with the tools, and every query."""
    from devloop.gate.tools import SYSTEM

    fmt = get_format("hermes")  # any text format: its tool listing is a long, varied text
    return [f"{SYSTEM}\n\n{fmt.render_tools(suite.tools)}", *(q.prompt for q in queries)]


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
