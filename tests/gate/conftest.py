"""One tiny randomly initialised Mistral-architecture model for the whole session, saved like real
weights (config, safetensors, tokenizer with the Mistral control tokens) and loaded back from disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.gate.tiny import build_tiny_mistral


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))
