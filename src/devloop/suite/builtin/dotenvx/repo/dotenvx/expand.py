from __future__ import annotations

import re
from collections.abc import Callable

_REF = re.compile(r"(\\?)\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::-([^}]*))?\}")


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """Replace ${NAME} and ${NAME:-default}; '\\${NAME}' stays literal (without the backslash)."""

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        found = lookup(name)
        if found:
            return found
        return default if default is not None else ""

    return _REF.sub(replace, value)
