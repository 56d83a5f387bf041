from __future__ import annotations

import re

from dotenvx.errors import DotenvError

_KEY = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "\\$"}


def _double_quoted(body: str, lineno: int, source: str) -> tuple[str, str]:
    """Decode a double-quoted value; returns (value, rest of line after the closing quote)."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
            continue
        if ch == '"':
            return "".join(out), body[i + 1:]
        out.append(ch)
        i += 1
    raise DotenvError("unterminated double quote", lineno, source)


def parse_dotenv(text: str, source: str = ".env") -> list[tuple[str, str, bool]]:
    """Parse .env text into (key, raw value, expand) triples in file order.

    Single-quoted values are literal (expand=False); others may contain ${VAR} references.
    """
    entries = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _KEY.match(stripped)
        if not match:
            raise DotenvError(f"expected KEY=VALUE, got {stripped[:40]!r}", lineno, source)
        key, value = match.groups()
        expand = True
        if value.startswith("'"):
            end = value.find("'", 1)
            if end == -1:
                raise DotenvError("unterminated single quote", lineno, source)
            value, rest, expand = value[1:end], value[end + 1:], False
        elif value.startswith('"'):
            value, rest = _double_quoted(value[1:], lineno, source)
        else:
            value, _, _ = value.partition(" #")
            value, rest = value.strip(), ""
        if rest.strip() and not rest.strip().startswith("#"):
            raise DotenvError("unexpected text after closing quote", lineno, source)
        entries.append((key, value, expand))
    return entries
