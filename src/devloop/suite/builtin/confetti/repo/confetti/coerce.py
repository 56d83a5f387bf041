from __future__ import annotations

import json
from typing import Any

from confetti.errors import ConfigError


def coerce(raw: str, like: Any, source: str) -> Any:
    """Convert the string `raw` to the type of `like` (the value it replaces)."""
    if like is None or isinstance(like, str):
        return raw
    if isinstance(like, int):
        try:
            return int(raw, 0)
        except ValueError:
            raise ConfigError(f"expected an integer, got {raw!r}", source) from None
    if isinstance(like, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"expected a number, got {raw!r}", source) from None
    if isinstance(like, list):
        text = raw.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"invalid JSON list: {exc.msg}", source) from None
            if not isinstance(value, list):
                raise ConfigError("expected a list", source)
            return value
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(like, dict):
        raise ConfigError("cannot replace a whole section from one variable", source)
    raise ConfigError(f"unsupported setting type {type(like).__name__}", source)
