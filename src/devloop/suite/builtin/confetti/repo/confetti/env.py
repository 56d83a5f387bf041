from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confetti.coerce import coerce
from confetti.errors import ConfigError

SEPARATOR = "__"


def env_path(name: str, prefix: str) -> list[str] | None:
    """`APP_DATABASE__PORT` -> ['database', 'port'] for prefix 'APP_'; None if not ours."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if not rest:
        return None
    return [part.lower() for part in rest.split(SEPARATOR)]


def apply_env(data: dict[str, Any], environ: Mapping[str, str], prefix: str, strict: bool = True) -> list[str]:
    """Override values in `data` from `environ`; returns the dotted keys that were overridden.

    Variables naming unknown settings raise ConfigError when `strict`, else are ignored.
    """
    applied = []
    for name in sorted(environ):
        path = env_path(name, prefix)
        if path is None:
            continue
        node: Any = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if not isinstance(node, dict) or path[-1] not in node:
            if strict:
                raise ConfigError(f"unknown setting {'.'.join(path)}", name)
            continue
        node[path[-1]] = coerce(environ[name], node[path[-1]], name)
        applied.append(".".join(path))
    return applied
