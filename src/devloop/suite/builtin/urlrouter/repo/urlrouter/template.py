from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from urlrouter.converters import CONVERTERS, Converter
from urlrouter.errors import RouteError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
# What a placeholder matches; the converter then validates and converts it.
_SEGMENT = "(.+)"


@dataclass
class Template:
    """A compiled route template such as '/users/{id:int}/posts/{slug}'."""

    text: str
    regex: re.Pattern[str]
    params: list[tuple[str, Converter]]

    @classmethod
    def compile(cls, text: str) -> Template:
        if not text.startswith("/"):
            raise RouteError(f"route must start with '/': {text!r}")
        parts, params, pos = ["^"], [], 0
        for match in _PLACEHOLDER.finditer(text):
            name, conv_name = match.group(1), match.group(2) or "str"
            if conv_name not in CONVERTERS:
                raise RouteError(f"unknown converter {conv_name!r} in {text!r}")
            if any(name == p for p, _ in params):
                raise RouteError(f"duplicate placeholder {name!r} in {text!r}")
            parts.append(re.escape(text[pos:match.start()]))
            parts.append(_SEGMENT)
            params.append((name, CONVERTERS[conv_name]))
            pos = match.end()
        rest = text[pos:]
        if "{" in rest or "}" in rest:
            raise RouteError(f"unbalanced brace in {text!r}")
        parts.append(re.escape(rest) + "$")
        return cls(text, re.compile("".join(parts)), params)

    def match(self, path: str) -> dict[str, Any] | None:
        found = self.regex.match(path)
        if not found:
            return None
        values = {}
        for (name, conv), text in zip(self.params, found.groups()):
            try:
                values[name] = conv.to_python(text)
            except ValueError:
                return None
        return values

    def build(self, values: dict[str, Any]) -> str:
        missing = [name for name, _ in self.params if name not in values]
        if missing:
            raise RouteError(f"missing value(s) for {', '.join(missing)} in {self.text!r}")
        convs = dict(self.params)
        return _PLACEHOLDER.sub(lambda m: convs[m.group(1)].to_url(values[m.group(1)]), self.text)
