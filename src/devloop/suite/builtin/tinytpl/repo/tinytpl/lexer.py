from __future__ import annotations

import re
from dataclasses import dataclass

from tinytpl.errors import TemplateSyntaxError

_TAG = re.compile(r"({{.*?}}|{%.*?%})", re.S)


@dataclass
class Token:
    kind: str  # "text", "var" or "block"
    value: str
    line: int


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    line = 1
    for piece in _TAG.split(source):
        if not piece:
            continue
        if piece.startswith("{{"):
            tokens.append(Token("var", piece[2:-2].strip(), line))
        elif piece.startswith("{%"):
            tokens.append(Token("block", piece[2:-2].strip(), line))
        else:
            if "{{" in piece or "{%" in piece:
                raise TemplateSyntaxError("unclosed tag", line + piece[: piece.find("{")].count("\n"))
            tokens.append(Token("text", piece, line))
        line += piece.count("\n")
    return tokens
