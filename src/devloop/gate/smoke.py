"""Gate 1: the model loads and writes code that parses. Local weights load through transformers (imported
here, never at CLI start-up), or a GGUF file through llama.cpp itself when `runtime = "llama.cpp"` (the
optional `llama` extra); a served model is reached through devloop's model client."""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import re
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.gate import llamacpp
from devloop.gate.result import Check, GateInputError, GateResult, library_versions
from devloop.models import ModelError
from devloop.models.providers import get_model
from devloop.types import SamplingParams

DEFAULT_PROMPT = "Write a Python function `add(a, b)` that returns a + b. Reply with one Python code block."
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass
class SmokeSettings:
    model: str | None = None  # a served model spec
    weights: str | None = None  # a local transformers model directory
    base_url: str | None = None
    prompt: str = DEFAULT_PROMPT
    max_tokens: int = 128
    max_load_s: float | None = None
    max_peak_mb: float | None = None
    runtime: str = "transformers"  # or "llama.cpp": a .gguf file run by llama-cpp-python


def extract_code(text: str) -> str:
    """The first fenced code block, or the whole reply when it has none."""
    match = _FENCE.search(text)
    return match.group(1) if match else text


def _parses(code: str) -> tuple[bool, str]:
    if not code.strip():
        return False, "empty reply"
    try:
        ast.parse(code)
    except SyntaxError as e:
        return False, f"SyntaxError line {e.lineno}: {e.msg}"
    return True, f"{len(code.splitlines())} lines parse"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_smoke_gate(settings: SmokeSettings) -> GateResult:
    if (settings.model is None) == (settings.weights is None):
        raise GateInputError(
            "gate1: give exactly one of model (a served model) or weights (a local directory)"
        )
    if settings.runtime not in llamacpp.RUNTIMES:
        raise GateInputError(f"gate1.runtime: one of {', '.join(llamacpp.RUNTIMES)}")
    in_llama_cpp = settings.runtime == llamacpp.RUNTIME
    if in_llama_cpp:
        _check_llama_cpp("gate1", settings.weights)
    result = GateResult(gate=1, name="smoke", versions=library_versions())
    text: str | None
    if settings.weights is not None and in_llama_cpp:
        text = _llama_cpp_local(Path(settings.weights), settings, result)
    elif settings.weights is not None:
        text = _local(Path(settings.weights), settings, result)
    else:
        text = _served(str(settings.model), settings, result)
    if text is None:
        return result
    code = extract_code(text)
    ok, detail = _parses(code)
    result.details["reply"] = text
    result.checks.append(Check("code parses", ok, detail))
    load_s = result.details.get("load_s")
    if settings.max_load_s is not None and isinstance(load_s, float):
        result.checks.append(Check("load time", load_s <= settings.max_load_s, f"{load_s:.2f} s"))
    peak = result.details["peak_rss_mb"] = peak_rss_mb()
    where = "process peak"
    gpu = (
        gpu_peak_mb(importlib.import_module("torch"), str(result.details["device"]))
        if settings.weights and not in_llama_cpp
        else None
    )
    if gpu is not None:
        # On a GPU the weights and activations live in device memory: that is the ceiling that matters.
        peak = result.details["peak_gpu_mb"] = gpu
        where = "GPU peak"
    if settings.max_peak_mb is not None:
        result.checks.append(Check("peak memory", peak <= settings.max_peak_mb, f"{peak:.0f} MiB ({where})"))
    return result


def _check_llama_cpp(where: str, weights: str | None) -> None:
    if weights is None or not weights.endswith(".gguf"):
        raise GateInputError(f"{where}.runtime: llama.cpp runs a .gguf file: give weights = PATH.gguf")
    llamacpp.require(f"{where}.runtime")


def _llama_cpp_local(path: Path, settings: SmokeSettings, result: GateResult) -> str:
    """The prompt through llama.cpp: in the chat template the GGUF carries (rendered by llama-cpp-python,
    as its server would), else as plain text; greedy, like the transformers path."""
    started = time.perf_counter()
    llm = llamacpp.load(path)
    try:
        result.details.update(
            {"weights": str(path), "runtime": llamacpp.RUNTIME, "load_s": time.perf_counter() - started}
        )
        began = time.perf_counter()
        if llamacpp.chat_template(llm):
            reply = llm.create_chat_completion(
                messages=[{"role": "user", "content": settings.prompt}],
                max_tokens=settings.max_tokens,
                temperature=0.0,
            )
            text = str(reply["choices"][0]["message"].get("content") or "")
            new = int(reply["usage"]["completion_tokens"])
        else:
            ids = llamacpp.tokenize(llm, settings.prompt + "\n")
            tokens, _ = llamacpp.greedy(llm, ids, settings.max_tokens)
            text, new = llamacpp.detokenize(llm, tokens), len(tokens)
        took = time.perf_counter() - began
    finally:
        llamacpp.close(llm)
    result.details.update({"device": "llama.cpp", "generate_s": took, "new_tokens": new})
    result.details["tokens_per_s"] = new / took if took > 0 else None
    return text


def _served(spec: str, settings: SmokeSettings, result: GateResult) -> str | None:
    try:
        model = get_model(spec, base_url=settings.base_url, max_retries=1)
    except ValueError as e:
        raise GateInputError(f"gate1.model: {e}") from e
    try:
        params = SamplingParams(temperature=0.0, max_tokens=settings.max_tokens)
        completion = model.complete([{"role": "user", "content": settings.prompt}], None, params)
    except ModelError as e:
        result.checks.append(Check("model answers", False, str(e)))
        return None
    finally:
        model.close()
    result.details.update({"model": spec, "generate_s": completion.latency_s})
    return completion.content or ""


def cpu_threads() -> int:
    """Torch's CPU threads for local weights: $DEVLOOP_TORCH_THREADS, else the cores the load average
    leaves idle (at least one). OpenMP threads spin at every barrier, so on cores that other processes
    keep busy, two threads generate an order of magnitude slower than one (measured 0.4-0.6 against
    4.4-8.9 tok/s for SmolLM2-135M at load average 8 on 2 cores)."""
    raw = os.environ.get("DEVLOOP_TORCH_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise GateInputError(f"DEVLOOP_TORCH_THREADS: a positive integer, not {raw!r}")
        return int(raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    idle = cores - os.getloadavg()[0]
    return max(1, min(cores, int(idle + 0.5)))


@dataclass
class SharedWeights:
    """Weights loaded once for a whole `gate run`: de-quantising a GGUF takes tens of seconds on a CPU,
    and gates 1-4 read the same file. `saved_s` adds up the load time each reuse did not spend."""

    loaded: dict[tuple[str, int, int], tuple[Any, Any, str, float]] = field(default_factory=dict)
    loads: int = 0
    reuses: int = 0
    saved_s: float = 0.0


_SHARED: ContextVar[SharedWeights | None] = ContextVar("devloop_gate_shared_weights", default=None)


@contextmanager
def weights_shared() -> Iterator[SharedWeights]:
    """Within this block, `load_local` loads each weights path once and hands the same objects out again."""
    shared = SharedWeights()
    token = _SHARED.set(shared)
    try:
        yield shared
    finally:
        _SHARED.reset(token)


def _identity(path: Path) -> tuple[str, int, int]:
    """The weights as they are on disk: rewritten files (a new fused model at the same path) load anew."""
    files = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
    stats = [f.stat() for f in files]
    return str(path.resolve()), max((s.st_mtime_ns for s in stats), default=0), sum(s.st_size for s in stats)


def load_local(directory: Path, take: bool = False) -> tuple[Any, Any, str]:
    """(tokenizer, model, device), loaded once per `weights_shared()` block. `take`: the caller changes
    the model (training fuses a LoRA into it), so it gets it to itself and later callers load it anew."""
    shared = _SHARED.get()
    if shared is None or not directory.exists():
        return _load_local(directory)
    key = _identity(directory)
    hit = shared.loaded.pop(key, None) if take else shared.loaded.get(key)
    if hit is not None:
        shared.reuses += 1
        shared.saved_s += hit[3]
        return hit[0], hit[1], hit[2]
    # The first load would otherwise count the libraries' import time as time saved by reuse; a missing
    # library is reported by _load_local.
    with contextlib.suppress(ImportError):
        importlib.import_module("transformers")
    started = time.perf_counter()
    tokenizer, model, device = _load_local(directory)
    shared.loads += 1
    if not take:
        shared.loaded[key] = (tokenizer, model, device, time.perf_counter() - started)
    return tokenizer, model, device


def pick_device(torch: Any) -> tuple[str, Any]:
    """(device, dtype) for local weights: a CUDA GPU in bf16 where it has bf16, else in fp16 (Gate 4's LoRA
    adapters stay fp32 under peft and train with fp16 loss scaling); the CPU in fp32, where half
    precision is slower and loses accuracy. The same gate code runs on both."""
    if not torch.cuda.is_available():
        return "cpu", torch.float32
    return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def gpu_peak_mb(torch: Any, device: str) -> float | None:
    """The GPU memory the process has held at most since the last reset (None off CUDA)."""
    if device != "cuda":
        return None
    return float(torch.cuda.max_memory_allocated()) / 2**20


def _load_local(directory: Path) -> tuple[Any, Any, str]:
    """(tokenizer, model, device) from a local directory or a `.gguf` file (read through transformers'
    GGUF support, which needs the `gguf` package, and de-quantised); nothing is downloaded."""
    gguf: dict[str, str] = {}
    if directory.is_file() and directory.suffix == ".gguf":
        gguf = {"gguf_file": directory.name}
        directory = directory.parent
    elif not directory.is_dir():
        raise GateInputError(f"gate1.weights: no such model directory or .gguf file: {directory}")
    try:
        torch: Any = importlib.import_module("torch")
        transformers: Any = importlib.import_module("transformers")
    except ImportError as e:
        raise GateInputError(
            f"local weights need torch and transformers: pip install 'devloop[gate]' ({e})"
        ) from e
    device, dtype = pick_device(torch)
    if device == "cpu":
        torch.set_num_threads(cpu_threads())
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory), local_files_only=True, **gguf)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(directory), local_files_only=True, dtype=dtype, **gguf
        ).to(device)
    except ImportError as e:
        raise GateInputError(f"gate1.weights: {directory}: {str(e).splitlines()[0]}") from e
    except (OSError, ValueError) as e:
        raise GateInputError(f"gate1.weights: {directory}: {str(e).splitlines()[0]}") from e
    if gguf:
        # transformers de-quantises GGUF tensors to plain floats but keeps a GGUF quantisation marker,
        # which makes the Trainer refuse to train; the weights are ordinary tensors, so drop the marker.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    model.eval()
    return tokenizer, model, device


def _local(directory: Path, settings: SmokeSettings, result: GateResult) -> str:
    torch: Any = importlib.import_module("torch")

    started = time.perf_counter()
    tokenizer, model, device = load_local(directory)
    result.details.update(
        {"weights": str(directory), "device": device, "load_s": time.perf_counter() - started}
    )
    result.details["dtype"] = str(getattr(model, "dtype", "")).removeprefix("torch.")
    if device == "cpu":
        result.details["torch_threads"] = torch.get_num_threads()
    messages = [{"role": "user", "content": settings.prompt}]
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt = settings.prompt + "\n"
    inputs = tokenizer(prompt, return_tensors="pt").to(device)
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(
            **inputs, max_new_tokens=settings.max_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    new = output[0][inputs["input_ids"].shape[1] :]
    took = time.perf_counter() - started
    result.details.update({"generate_s": took, "new_tokens": int(new.shape[0])})
    result.details["tokens_per_s"] = int(new.shape[0]) / took if took > 0 else None
    return str(tokenizer.decode(new, skip_special_tokens=True))


def settings_from_table(where: str, table: dict[str, Any]) -> SmokeSettings:
    unknown = set(table) - set(SmokeSettings.__dataclass_fields__)
    if unknown:
        raise GateInputError(f"{where}: gate1: unknown key {sorted(unknown)[0]!r}")
    for key in ("model", "weights", "base_url", "prompt", "runtime"):
        if key in table and not isinstance(table[key], str):
            raise GateInputError(f"{where}: gate1.{key}: a string")
    if ("model" in table) == ("weights" in table):
        raise GateInputError(f"{where}: gate1: give exactly one of model or weights")
    runtime = table.get("runtime", "transformers")
    if runtime not in llamacpp.RUNTIMES:
        raise GateInputError(f"{where}: gate1.runtime: one of {', '.join(llamacpp.RUNTIMES)}")
    if runtime == llamacpp.RUNTIME:
        _check_llama_cpp(f"{where}: gate1", table.get("weights"))
    for key in ("max_load_s", "max_peak_mb"):
        value = table.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
        ):
            raise GateInputError(f"{where}: gate1.{key}: a positive number")
    return SmokeSettings(**table)
