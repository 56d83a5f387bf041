"""Gated model evaluation: cheap checks first (the tokenizer), a decision matrix saying when to stop."""
