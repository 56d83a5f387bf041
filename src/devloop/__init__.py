"""devloop: a coding-agent scaffold and evaluation lab for any OpenAI-compatible model."""

__version__ = "0.1.0"
