from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from dotenvx.errors import DotenvError
from dotenvx.expand import expand
from dotenvx.parser import parse_dotenv


def find_dotenv(start: str | Path = ".", name: str = ".env") -> Path | None:
    """The nearest `name` file in `start` or one of its parents."""
    here = Path(start).resolve()
    for directory in [here, *here.parents]:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _resolve(path: Path, environ: MutableMapping[str, str], override: bool) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DotenvError(f"cannot read: {exc.strerror}", 0, str(path)) from None
    resolved: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        if name in resolved:
            return resolved[name]
        return environ.get(name)

    for key, raw, should_expand in parse_dotenv(text, str(path)):
        resolved[key] = expand(raw, lookup) if should_expand else raw
    return resolved


def dotenv_values(path: str | Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The file's values after expansion, without changing the environment."""
    return _resolve(Path(path), os.environ if environ is None else environ, override=False)


def load_dotenv(
    path: str | Path | None = None,
    override: bool = False,
    environ: MutableMapping[str, str] | None = None,
) -> dict[str, str]:
    """Set the file's variables in `environ` (default os.environ); returns those that were set.

    Variables already present keep their value unless `override`. Without `path`, the nearest .env
    from the current directory upwards is used; no file found means nothing is loaded.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        path = find_dotenv()
        if path is None:
            return {}
    values = _resolve(Path(path), environ, override)
    applied = {}
    for key, value in values.items():
        if override or key not in environ:
            environ[key] = value
            applied[key] = value
    return applied
