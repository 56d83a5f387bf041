"""The tools an agent can call: `execute_bash`, `str_replace_editor`, `search_code`, `think`, `finish`, and the Toolbox.

Names are resolved lazily: `devloop.formats.base` imports `devloop.tools.base`, and the registry imports
`devloop.formats.base`, so importing the registry here eagerly would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Toolbox": "devloop.tools.registry",
    "default_toolbox": "devloop.tools.registry",
    "EditorTool": "devloop.tools.editor",
    "ThinkTool": "devloop.tools.think",
    "FinishTool": "devloop.tools.finish",
    "load_description": "devloop.tools.common",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'devloop.tools' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
