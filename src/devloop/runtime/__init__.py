"""Runtimes: where the agent's commands run. `get_runtime(name, root)` picks one by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devloop.runtime.base import Runtime, RuntimeFailure
from devloop.runtime.bwrap import BwrapRuntime
from devloop.runtime.docker import DockerRuntime
from devloop.runtime.limits import Limits
from devloop.runtime.local import LocalRuntime
from devloop.runtime.probe import SANDBOX_CHOICES, resolve_sandbox
from devloop.runtime.shell import PersistentShell

RuntimeFactory = Callable[..., Runtime]

_REGISTRY: dict[str, RuntimeFactory] = {
    "local": LocalRuntime,
    "none": LocalRuntime,  # "no sandbox"
    "bwrap": BwrapRuntime,
    "docker": DockerRuntime,
}


def register_runtime(name: str, factory: RuntimeFactory, *, replace: bool = False) -> None:
    """Make `factory(root, **kw)` available to get_runtime under `name`."""
    key = name.strip().lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"runtime {name!r} is already registered")
    _REGISTRY[key] = factory


def runtime_names() -> list[str]:
    """The names get_runtime accepts, sorted."""
    return sorted(_REGISTRY)


def get_runtime(name: str, root: Path, **kw: Any) -> Runtime:
    """Start the runtime registered as `name` (case-insensitive) for workspace `root`.

    Raises ValueError for an unknown name, RuntimeFailure if it cannot start."""
    factory = _REGISTRY.get(name.strip().lower())
    if factory is None:
        raise ValueError(f"unknown runtime {name!r}: choose one of {', '.join(runtime_names())}")
    return factory(Path(root), **kw)


__all__ = [
    "SANDBOX_CHOICES",
    "BwrapRuntime",
    "DockerRuntime",
    "Limits",
    "LocalRuntime",
    "PersistentShell",
    "Runtime",
    "RuntimeFactory",
    "RuntimeFailure",
    "get_runtime",
    "register_runtime",
    "resolve_sandbox",
    "runtime_names",
]
