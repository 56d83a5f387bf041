"""Definitions of a source file (functions, classes, methods) found with tree-sitter, and the skeleton
(signatures and docstring first lines only) that stands for a file in a prompt.

Python is parsed with the tree-sitter-python grammar; other files have no definitions and are searched
as whole files. Parsing never executes anything and copes with broken code (tree-sitter recovers)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tree_sitter import Language, Node, Parser

_MAX_SIGNATURE = 240
_MAX_DOC = 400


@dataclass(frozen=True)
class Definition:
    """One function, class or method: where it is and what it says about itself."""

    kind: str  # "function", "class" or "method"
    name: str  # qualified within the file: `Class.method`
    line: int  # 1-based, of the `def`/`class` line (decorators above it are not counted)
    end_line: int
    signature: str  # the header up to its colon, on one line: `def parse(self, data: bytes) -> Header`
    doc: str  # the docstring, shortened
    depth: int  # 0 for module level, 1 inside one class...


@functools.cache
def _parser() -> Parser:
    import tree_sitter_python

    return Parser(Language(tree_sitter_python.language()))


def language_of(path: str) -> str | None:
    return "python" if path.endswith((".py", ".pyi")) else None


def extract(path: str, source: bytes) -> list[Definition]:
    """The definitions of `source` (the file at `path`) in source order; [] for unsupported languages."""
    if language_of(path) != "python":
        return []
    tree = _parser().parse(source)
    found: list[Definition] = []
    _walk(tree.root_node, source, "", 0, False, found)
    return found


def _walk(node: Node, src: bytes, prefix: str, depth: int, in_class: bool, out: list[Definition]) -> None:
    for child in node.children:
        target = child
        if child.type == "decorated_definition":
            target = child.child_by_field_name("definition") or child
        if target.type in ("function_definition", "class_definition"):
            name_node = target.child_by_field_name("name")
            if name_node is None:
                continue
            name = _text(src, name_node)
            qual = f"{prefix}{name}"
            is_class = target.type == "class_definition"
            kind = "class" if is_class else ("method" if in_class else "function")
            body = target.child_by_field_name("body")
            out.append(
                Definition(
                    kind=kind,
                    name=qual,
                    line=target.start_point[0] + 1,
                    end_line=target.end_point[0] + 1,
                    signature=_signature(src, target, body),
                    doc=_docstring(src, body),
                    depth=depth,
                )
            )
            if body is not None:
                _walk(body, src, f"{qual}.", depth + 1, is_class, out)
        elif child.type in ("if_statement", "try_statement", "block", "else_clause", "except_clause"):
            # Definitions under `if TYPE_CHECKING:` or `try: ... except ImportError:` are still top level.
            _walk(child, src, prefix, depth, in_class, out)


def _text(src: bytes, node: Node) -> str:
    return src[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _signature(src: bytes, node: Node, body: Node | None) -> str:
    end = body.start_byte if body is not None else node.end_byte
    header = src[node.start_byte : end].decode("utf-8", errors="replace")
    header = " ".join(header.split()).rstrip()
    header = header.removesuffix(":").rstrip()
    return header[:_MAX_SIGNATURE]


def _docstring(src: bytes, body: Node | None) -> str:
    if body is None or not body.children:
        return ""
    first = body.children[0]
    if first.type != "expression_statement" or not first.children or first.children[0].type != "string":
        return ""
    parts = [c for c in first.children[0].children if c.type == "string_content"]
    text = "".join(_text(src, c) for c in parts)
    return " ".join(text.split())[:_MAX_DOC]


def skeleton(definitions: list[Definition], max_lines: int = 60) -> str:
    """The file's outline: one indented signature per definition with its line number, `...` when cut."""
    lines = [f"{d.line:>5}: {'    ' * d.depth}{d.signature}" for d in definitions]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"       ... {len(lines) - max_lines} more definitions"]
    return "\n".join(lines)
