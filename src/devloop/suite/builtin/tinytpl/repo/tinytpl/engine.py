from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tinytpl.errors import TemplateError, TemplateSyntaxError
from tinytpl.filters import escape, get_filter
from tinytpl.lexer import Token, tokenize

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_FILTER = re.compile(r"^([a-z_]+)(?:\((.*)\))?$")


def lookup(context: Mapping[str, Any], dotted: str) -> Any:
    """Resolve 'user.name' against the context: attribute, then key, then index; None when missing."""
    if not _NAME.match(dotted):
        raise TemplateError(f"invalid expression {dotted!r}")
    value: Any = context
    for part in dotted.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif part.isdigit() and isinstance(value, (list, tuple)):
            value = value[int(part)] if int(part) < len(value) else None
        else:
            value = getattr(value, part, None)
        if value is None:
            return None
    return value


def evaluate(expr: str, context: Mapping[str, Any]) -> Any:
    name, *filters = [p.strip() for p in expr.split("|")]
    value = lookup(context, name)
    for spec in filters:
        match = _FILTER.match(spec)
        if not match:
            raise TemplateError(f"invalid filter {spec!r}")
        args = [ast.literal_eval(a.strip()) for a in match.group(2).split(",")] if match.group(2) else []
        value = get_filter(match.group(1))(value, *args)
    return value


@dataclass
class Node:
    kind: str  # text, var, if, for
    arg: str = ""
    body: list[Node] = field(default_factory=list)
    else_body: list[Node] = field(default_factory=list)


def parse(tokens: list[Token]) -> list[Node]:
    root: list[Node] = []
    stack: list[tuple[Node, list[Node], int]] = []
    current = root
    for tok in tokens:
        if tok.kind == "text":
            current.append(Node("text", tok.value))
        elif tok.kind == "var":
            current.append(Node("var", tok.value))
        else:
            word, _, rest = tok.value.partition(" ")
            if word in ("if", "for"):
                node = Node(word, rest.strip())
                current.append(node)
                stack.append((node, current, tok.line))
                current = node.body
            elif word == "else" and stack and stack[-1][0].kind == "if":
                current = stack[-1][0].else_body
            elif word in ("endif", "endfor") and stack and stack[-1][0].kind == word[3:]:
                current = stack.pop()[1]
            else:
                raise TemplateSyntaxError(f"unexpected {{% {tok.value} %}}", tok.line)
    if stack:
        node, _, line = stack[-1]
        raise TemplateSyntaxError(f"{{% {node.kind} %}} is never closed", line)
    return root


class Template:
    def __init__(self, source: str, autoescape: bool = True) -> None:
        self.nodes = parse(tokenize(source))
        self.autoescape = autoescape

    def render(self, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        scope = {**(context or {}), **kwargs}
        out: list[str] = []
        self._render(self.nodes, scope, out)
        return "".join(out)

    def _render(self, nodes: list[Node], scope: dict[str, Any], out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.arg)
            elif node.kind == "var":
                value = evaluate(node.arg, scope)
                out.append(escape(value) if self.autoescape else ("" if value is None else str(value)))
            elif node.kind == "if":
                self._render(node.body if evaluate(node.arg, scope) else node.else_body, scope, out)
            else:
                target, _, source = node.arg.partition(" in ")
                for item in evaluate(source, scope) or []:
                    self._render(node.body, {**scope, target.strip(): item}, out)


def render(source: str, context: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    return Template(source).render(context, **kwargs)
