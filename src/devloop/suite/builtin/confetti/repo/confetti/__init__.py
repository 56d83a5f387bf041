"""Layered configuration: defaults < file < environment."""

from confetti.coerce import coerce
from confetti.errors import ConfigError
from confetti.loader import Config, load

__all__ = ["Config", "ConfigError", "coerce", "load"]
