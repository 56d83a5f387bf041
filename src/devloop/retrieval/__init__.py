"""Code retrieval: a BM25 index of a repository tree, per file and per definition (tree-sitter)."""

from devloop.retrieval.definitions import Definition, extract, skeleton
from devloop.retrieval.index import Hit, Index, read_tree
from devloop.retrieval.tokens import tokenize

__all__ = ["Definition", "Hit", "Index", "extract", "read_tree", "skeleton", "tokenize"]
