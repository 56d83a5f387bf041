from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class Converter:
    """Turns a matched path segment into a Python value and back."""

    name: str

    def to_python(self, text: str) -> Any:
        return unquote(text)

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="")


class IntConverter(Converter):
    def to_python(self, text: str) -> int:
        if not text.isdigit():
            raise ValueError(text)
        return int(text)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class UUIDConverter(Converter):
    def to_python(self, text: str) -> uuid.UUID:
        return uuid.UUID(text)


class PathConverter(Converter):
    """Like str, but the value may contain slashes."""

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="/")


CONVERTERS: dict[str, Converter] = {
    "str": Converter("str"),
    "int": IntConverter("int"),
    "uuid": UUIDConverter("uuid"),
    "path": PathConverter("path"),
}
