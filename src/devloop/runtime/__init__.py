"""Runtimes: where the agent's commands run. `get_runtime(name, root)` picks one by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop.runtime.base import Runtime, RuntimeFailure

if TYPE_CHECKING:
    from devloop.runtime.bwrap import BwrapRuntime
    from devloop.runtime.docker import DockerRuntime
    from devloop.runtime.limits import Limits
    from devloop.runtime.local import LocalRuntime
    from devloop.runtime.probe import SANDBOX_CHOICES, resolve_sandbox
    from devloop.runtime.shell import PersistentShell

RuntimeFactory = Callable[..., Runtime]

# Imported when first used, not with the package: `devloop.runtime.limits` (read by the settings every
# command loads) would otherwise pull in the sandbox, docker and shell modules (~30 ms at start-up).
_LAZY = {
    "BwrapRuntime": "devloop.runtime.bwrap",
    "DockerRuntime": "devloop.runtime.docker",
    "Limits": "devloop.runtime.limits",
    "LocalRuntime": "devloop.runtime.local",
    "SANDBOX_CHOICES": "devloop.runtime.probe",
    "resolve_sandbox": "devloop.runtime.probe",
    "PersistentShell": "devloop.runtime.shell",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


_REGISTRY: dict[str, RuntimeFactory | str] = {
    "local": "LocalRuntime",
    "none": "LocalRuntime",  # "no sandbox"
    "bwrap": "BwrapRuntime",
    "docker": "DockerRuntime",
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
    if isinstance(factory, str):
        factory = __getattr__(factory)
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
