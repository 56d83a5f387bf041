"""A transformers model directory written as a GGUF file with the `gguf` package (gguf-py, llama.cpp's own
Python library) and quantised with its numpy quantisers: no compiled llama.cpp and no converter script.

Covered: Llama-architecture decoders (`model_type` llama or mistral; llama.cpp runs both as `llama`) with a
byte-level BPE `tokenizer.json`. The layout is llama.cpp's: tensor names from gguf-py's name map, the query
and key projections permuted from Hugging Face's half-split rotary layout to the interleaved one
llama.cpp (and transformers' GGUF loader, which undoes it) expect, norms kept in F32, the vocabulary
written as a `gpt2` tokenizer with its merges, special tokens and chat template. Anything else is refused
with a one-line reason naming what is missing (llama.cpp's converter handles more architectures)."""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARCHITECTURES = ("llama", "mistral")
# Output types the gguf package writes itself; the K-quants (Q4_K_M, ...) need llama.cpp's llama-quantize.
TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1")


class ExportError(Exception):
    """Why a model cannot be exported here, in one line."""


@dataclass
class Exported:
    path: Path
    type: str
    size_mb: float
    seconds: float
    tensors: int
    quantised: int  # tensors stored in the requested type (the rest: F32 norms, rows the blocks don't fit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "type": self.type,
            "size_mb": self.size_mb,
            "seconds": self.seconds,
            "tensors": self.tensors,
            "in_type": self.quantised,
        }


def missing() -> str | None:
    """What the exporter needs and this environment lacks, as a one-line reason, or None."""
    for module, why in (("gguf", "the gguf package"), ("safetensors", "safetensors"), ("torch", "torch")):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{why} is not installed (pip install 'devloop[gate]')"
    return None


def normalise_type(name: str) -> str:
    lowered = name.strip().lower()
    if lowered not in TYPES:
        raise ExportError(
            f"GGUF type {name!r}: the gguf package writes {', '.join(t.upper() for t in TYPES)}"
        )
    return lowered


def export(model_dir: Path, out: Path, type_name: str) -> Exported:
    """Write `model_dir` (config.json, *.safetensors, tokenizer.json) to `out` as GGUF in `type_name`."""
    reason = missing()
    if reason:
        raise ExportError(reason)
    gguf: Any = importlib.import_module("gguf")
    kind = normalise_type(type_name)
    started = time.perf_counter()
    config = _config(model_dir)
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    tokens, types = _vocabulary(model_dir, int(config["vocab_size"]))
    qtype = _qtype(gguf, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(out.stem)
    writer.add_context_length(int(config.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(_file_type(gguf, kind))
    if kind not in ("f32", "f16", "bf16"):
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(model_dir))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    add_bos = _tokenizer_config(model_dir).get("add_bos_token")
    if "bos" not in special.add_special_token and isinstance(add_bos, bool):
        special.add_special_token["bos"] = add_bos  # a loader must know whether to prepend BOS
    special.add_to_gguf(writer, quiet=True)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    tied = bool(config.get("tie_word_embeddings", False))
    count = in_type = 0
    for name, array in _tensors(model_dir):
        if name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight"):
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ExportError(f"{model_dir}: tensor {name} has no GGUF name for a llama model")
        if target.endswith("attn_q.weight"):
            array = _permute(array, heads, heads)
        elif target.endswith("attn_k.weight"):
            array = _permute(array, heads, kv_heads)
        data, raw = _encode(gguf, array, qtype)
        stored = raw if raw is not None else _plain_type(gguf, data)
        in_type += stored == qtype
        writer.add_tensor(target, data, raw_dtype=raw)
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return Exported(out, kind, out.stat().st_size / 2**20, time.perf_counter() - started, count, in_type)


def _config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    try:
        config = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ExportError(f"{path}: {e.strerror}") from e
    except ValueError as e:
        raise ExportError(f"{path}: not JSON ({e})") from e
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ExportError(
            f"{path}: model_type {model_type!r}: the built-in GGUF writer covers {', '.join(ARCHITECTURES)}; "
            "for others set llama_cpp (or DEVLOOP_LLAMA_CPP) to a llama.cpp checkout with convert_hf_to_gguf.py"
        )
    for key in ("num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size", "vocab_size"):
        if not isinstance(config.get(key), int):
            raise ExportError(f"{path}: {key}: an integer is required")
    return dict(config)


def _rope_theta(config: dict[str, Any]) -> float:
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if kind not in ("default", None):
        raise ExportError(f"config.json: rope type {kind!r} is not written by the built-in GGUF writer")
    theta = config.get("rope_theta", rope.get("rope_theta") if isinstance(rope, dict) else None)
    return float(theta if theta is not None else 10000.0)


def _vocabulary(model_dir: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens in id order and their GGUF types: added special tokens CONTROL (so a loader keeps them
    whole), other added tokens USER_DEFINED, rows the embedding has beyond the vocabulary UNUSED."""
    gguf: Any = importlib.import_module("gguf")
    data = _tokenizer_json(model_dir)
    model = data.get("model") or {}
    decoder = data.get("decoder") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder.get("type") != "ByteLevel":
        raise ExportError(
            f"{model_dir / 'tokenizer.json'}: only a byte-level BPE tokenizer is written by the built-in "
            f"GGUF writer (this is {model.get('type')!r} with a {decoder.get('type')!r} decoder)"
        )
    by_id: dict[int, tuple[str, int]] = {
        int(i): (t, gguf.TokenType.NORMAL) for t, i in dict(model.get("vocab") or {}).items()
    }
    for added in data.get("added_tokens") or []:
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[int(added["id"])] = (str(added["content"]), kind)
    size = max(vocab_size, max(by_id, default=-1) + 1)
    tokens, types = [], []
    for index in range(size):
        token, kind = by_id.get(index, (f"[PAD{index}]", gguf.TokenType.UNUSED))
        tokens.append(token)
        types.append(int(kind))
    return tokens, types


def _tokenizer_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer.json"
    try:
        return dict(json.loads(path.read_text("utf-8")))
    except OSError as e:
        raise ExportError(f"{path}: {e.strerror} (a fast tokenizer is needed for the GGUF vocabulary)") from e
    except ValueError as e:
        raise ExportError(f"{path}: not JSON ({e})") from e


def _tokenizer_config(model_dir: Path) -> dict[str, Any]:
    try:
        found = json.loads((model_dir / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(found) if isinstance(found, dict) else {}


def _pre_tokenizer(model_dir: Path) -> str:
    """llama.cpp's name for how text is split before the merges: GPT-2's regex for a plain ByteLevel
    pre-tokenizer; otherwise `default` (the gate compares token ids after reloading, so a mismatch shows)."""
    pre = _tokenizer_json(model_dir).get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    return "default"


def _tensors(model_dir: Path) -> Any:
    """(name, float32 numpy array) for every tensor of the safetensors files."""
    safetensors: Any = importlib.import_module("safetensors")
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{model_dir}: no *.safetensors weights")
    for file in files:
        with safetensors.safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, handle.get_tensor(name).float().numpy()


def _permute(weights: Any, heads: int, kv_heads: int) -> Any:
    """Rows of a query/key projection from the half-split rotary layout (each head's first half of
    dimensions paired with its second half) to adjacent pairs, head by head."""
    n = kv_heads if kv_heads != heads else heads
    return (
        weights.reshape(n, 2, weights.shape[0] // n // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _qtype(gguf: Any, kind: str) -> Any:
    return getattr(gguf.GGMLQuantizationType, kind.upper())


def _file_type(gguf: Any, kind: str) -> int:
    names = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16"}
    return int(getattr(gguf.LlamaFileType, names.get(kind, f"MOSTLY_{kind.upper()}")))


def _plain_type(gguf: Any, data: Any) -> Any:
    types = gguf.GGMLQuantizationType
    return types.F16 if data.dtype.itemsize == 2 else types.F32


def _encode(gguf: Any, array: Any, qtype: Any) -> tuple[Any, Any]:
    """(data, raw GGML type or None for a plain float array). 1-D tensors (norms) stay F32, as llama.cpp
    keeps them; a matrix whose rows the quantiser's blocks do not divide falls back to F16."""
    numpy: Any = importlib.import_module("numpy")
    types = gguf.GGMLQuantizationType
    if array.ndim < 2 or qtype == types.F32:
        return numpy.ascontiguousarray(array, dtype=numpy.float32), None
    if qtype == types.F16:
        return array.astype(numpy.float16), None
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if array.shape[-1] % block:
        return array.astype(numpy.float16), None
    return gguf.quants.quantize(numpy.ascontiguousarray(array, dtype=numpy.float32), qtype), qtype
