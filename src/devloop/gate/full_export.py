"""Gate 5's GGUF step: the fused or given weights written as GGUF files (devloop's writer on the `gguf`
package, or llama.cpp's converter and quantiser where a checkout is named), each file's size, its
tokenizer checked against the directory's, the suite scored again on it, and with `gguf_in_llama_cpp`
the file run in llama.cpp itself. A tool that is absent is a skip naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.formats.registry import get_format
from devloop.gate import gguf_export, llamacpp
from devloop.gate.result import Check, GateInputError, GateResult
from devloop.gate.suite import Query, Suite
from devloop.gate.tools import evaluate
from devloop.models import ModelError

if TYPE_CHECKING:
    from devloop.gate.full import FullSettings

# Where llama.cpp's checkout is looked for when the config names none.
LLAMA_CPP_ENV = "DEVLOOP_LLAMA_CPP"


def size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


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


def export_files(
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
