"""GGUF files run by llama.cpp itself (through llama-cpp-python, the optional `llama` extra), for the
gates that must show a file works where it will be deployed: Gate 1 can load and prompt a GGUF in
llama.cpp instead of transformers, and Gate 5 can load every file it exports in llama.cpp, compare its
tokenizer with the source directory's and generate from it.

llama-cpp-python ships as source only and its build takes many minutes, so it is imported lazily, only
when a config or flag asks for llama.cpp; without it the request fails in one line naming the extra."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devloop.gate.result import GateInputError

RUNTIME = "llama.cpp"
RUNTIMES = ("transformers", RUNTIME)
MISSING = (
    "llama.cpp runtime: llama-cpp-python is not installed: pip install 'devloop[llama]' "
    "(README: build it portably with CMAKE_ARGS)"
)


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def require(where: str) -> None:
    """Fail in one line, before any gate runs, when llama.cpp is asked for and absent."""
    if not available():
        raise GateInputError(f"{where}: {MISSING}")


def _module() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as e:
        raise GateInputError(MISSING) from e


def load(path: Path, n_ctx: int = 2048, threads: int | None = None) -> Any:
    """A `llama_cpp.Llama` on the GGUF file `path`, quiet, on the CPU unless llama.cpp was built for a GPU
    (then every layer is offloaded). `threads`: default as for torch ($DEVLOOP_TORCH_THREADS, else the
    idle cores)."""
    from devloop.gate.smoke import cpu_threads  # here: smoke imports this module

    llama_cpp = _module()
    if not path.is_file():
        raise GateInputError(f"llama.cpp: no such GGUF file: {path}")
    gpu = bool(getattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)())
    # As for torch: threads only on the cores the load leaves idle, since spinning threads on busy cores
    # run slower than fewer threads.
    threads = threads or cpu_threads()
    try:
        return llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
            n_gpu_layers=-1 if gpu else 0, verbose=False,
        )  # fmt: skip
    except (ValueError, RuntimeError) as e:
        raise GateInputError(f"llama.cpp: {path}: {str(e).splitlines()[0]}") from e


def close(llm: Any) -> None:
    with contextlib.suppress(Exception):
        llm.close()


def chat_template(llm: Any) -> str | None:
    found = (getattr(llm, "metadata", None) or {}).get("tokenizer.chat_template")
    return str(found) if found else None


def tokenize(llm: Any, text: str) -> list[int]:
    """Token ids as a chat prompt is split: control tokens written in the text kept whole, no BOS added."""
    return [int(t) for t in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)]


def greedy(llm: Any, prompt_ids: list[int], max_tokens: int) -> tuple[list[int], float]:
    """The first `max_tokens` greedy tokens after `prompt_ids` (an end-of-text token ends them early),
    and the seconds generation took."""
    eos = int(llm.token_eos())
    out: list[int] = []
    started = time.perf_counter()
    for token in llm.generate(prompt_ids, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(int(token))
        if int(token) == eos or len(out) >= max_tokens:
            break
    return out, time.perf_counter() - started


def detokenize(llm: Any, ids: list[int]) -> str:
    return bytes(llm.detokenize(ids)).decode("utf-8", errors="replace")


@dataclass
class Run:
    """One exported file in llama.cpp: its load time, how many texts it splits into the source
    tokenizer's ids, and a short greedy generation."""

    load_s: float
    texts: int
    same_ids: int
    tokens: list[int] = field(default_factory=list)
    generate_s: float = 0.0
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "load_s": self.load_s,
            "tokens_match": {"texts": self.texts, "same": self.same_ids},
            "new_tokens": len(self.tokens),
            "generate_s": self.generate_s,
            "tokens_per_s": len(self.tokens) / self.generate_s if self.generate_s > 0 else None,
            "reply": self.text,
        }


def run_file(path: Path, reference: Any, texts: list[str], prompt: str, max_tokens: int = 8) -> Run:
    """Load `path` in llama.cpp, tokenize `texts` there and with `reference` (the source directory's
    transformers tokenizer), and generate greedily after `prompt`."""
    started = time.perf_counter()
    llm = load(path)
    try:
        loaded = time.perf_counter() - started
        same = sum(
            tokenize(llm, t) == list(reference(t, add_special_tokens=False)["input_ids"]) for t in texts
        )
        ids = tokenize(llm, prompt)
        tokens, took = greedy(llm, ids, max_tokens)
        return Run(loaded, len(texts), int(same), tokens, took, detokenize(llm, tokens))
    finally:
        close(llm)
