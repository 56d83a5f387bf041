"""A tiny randomly initialised Mistral-architecture model saved like real weights (config, safetensors,
a BPE tokenizer with the Mistral control tokens): every gate's real code path in seconds on a CPU, for
the tests and for the pipeline benchmark. Its replies are noise; what it measures is devloop's own work."""

from __future__ import annotations

from pathlib import Path

CONTROL = ["[INST]", "[/INST]", "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[AVAILABLE_TOOLS]",
           "[/AVAILABLE_TOOLS]", "[ARGS]"]  # fmt: skip


def build_tiny_mistral(directory: Path, seed: int = 0) -> Path:
    """Write the model to `directory` (2 layers, hidden size 32, a 400-token vocabulary) and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", *CONTROL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [
        "def add(a, b):\n    return a + b\n",
        '{"name": "read_file", "arguments": {"path": "a.py"}}',
    ] * 30
    raw.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    config = MistralConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    MistralForCausalLM(config).save_pretrained(directory)
    return directory
