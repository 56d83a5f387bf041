from __future__ import annotations

from typing import Any

from jsonptr.errors import PointerError

_MISSING = object()


def escape(token: str) -> str:
    """Escape one reference token: '~' -> '~0', '/' -> '~1'."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """Undo `escape`."""
    return token.replace("~0", "~").replace("~1", "/")


def _index(token: str, size: int, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise PointerError(f"invalid array index {token!r}")
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PointerError(f"array index {index} out of range")
    return index


class JsonPointer:
    """A parsed pointer such as '/users/0/name'. The empty string points at the whole document."""

    def __init__(self, text: str) -> None:
        if text and not text.startswith("/"):
            raise PointerError(f"pointer must be empty or start with '/': {text!r}")
        self.text = text
        self.tokens = [unescape(t) for t in text.split("/")[1:]] if text else []

    @classmethod
    def from_tokens(cls, tokens: list[str]) -> JsonPointer:
        return cls("".join("/" + escape(str(t)) for t in tokens))

    def __repr__(self) -> str:
        return f"JsonPointer({self.text!r})"

    def _step(self, node: Any, token: str) -> Any:
        if isinstance(node, dict):
            if token not in node:
                raise PointerError(f"{self.text}: no member {token!r}")
            return node[token]
        if isinstance(node, list):
            return node[_index(token, len(node), allow_end=False)]
        raise PointerError(f"{self.text}: cannot index into {type(node).__name__}")

    def resolve(self, doc: Any, default: Any = _MISSING) -> Any:
        try:
            for token in self.tokens:
                doc = self._step(doc, token)
        except PointerError:
            if default is _MISSING:
                raise
            return default
        return doc

    def parent(self, doc: Any) -> tuple[Any, str]:
        if not self.tokens:
            raise PointerError("the root has no parent")
        node = doc
        for token in self.tokens[:-1]:
            node = self._step(node, token)
        return node, self.tokens[-1]

    def add(self, doc: Any, value: Any) -> Any:
        """Insert (arrays) or set (objects) `value`; returns the new document."""
        if not self.tokens:
            return value
        node, last = self.parent(doc)
        if isinstance(node, list):
            node.insert(_index(last, len(node), allow_end=True), value)
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise PointerError(f"{self.text}: cannot add into {type(node).__name__}")
        return doc

    def remove(self, doc: Any) -> Any:
        """Remove the target and return it."""
        node, last = self.parent(doc)
        if isinstance(node, list):
            return node.pop(_index(last, len(node), allow_end=False))
        if isinstance(node, dict) and last in node:
            return node.pop(last)
        raise PointerError(f"{self.text}: nothing to remove")
