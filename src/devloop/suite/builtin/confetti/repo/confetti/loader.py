from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confetti.env import apply_env
from confetti.errors import ConfigError


def merge(base: dict[str, Any], overlay: Mapping[str, Any], source: str, path: str = "") -> None:
    """Recursively copy `overlay` into `base`; a section cannot become a plain value or vice versa."""
    for key, value in overlay.items():
        dotted = f"{path}.{key}" if path else key
        current = base.get(key)
        if isinstance(current, dict) != isinstance(value, dict) and key in base:
            raise ConfigError(f"{dotted} must be {'a section' if isinstance(current, dict) else 'a value'}", source)
        if isinstance(value, dict):
            merge(base.setdefault(key, {}), value, source, dotted)
        else:
            base[key] = value


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", str(path)) from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"invalid {path.suffix[1:] or 'toml'}: {exc}", str(path)) from None


class Config:
    """Read-only view of the merged settings with dotted access: cfg.get('database.port')."""

    def __init__(self, data: dict[str, Any], sources: dict[str, str]) -> None:
        self._data = data
        self.sources = sources

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self._data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def __getitem__(self, dotted: str) -> Any:
        missing = object()
        value = self.get(dotted, missing)
        if value is missing:
            raise KeyError(dotted)
        return value

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)


def load(
    defaults: Mapping[str, Any],
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    prefix: str = "APP_",
    strict_env: bool = True,
) -> Config:
    """Merge defaults, then the file at `path` (if given), then `environ` (default: os.environ)."""
    data = copy.deepcopy(dict(defaults))
    sources: dict[str, str] = {}
    if path is not None:
        merge(data, read_file(Path(path)), str(path))
        sources["file"] = str(path)
    applied = apply_env(data, os.environ if environ is None else environ, prefix, strict_env)
    for key in applied:
        sources[key] = "env"
    return Config(data, sources)
