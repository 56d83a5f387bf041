"""A BM25 index (bm25s) over one repository tree: a document per file and one per definition.

The tree is read through `safefs.SafeRoot`, so a symbolic link is never followed (a model-written tree
may point anywhere) and a FIFO or device is never opened. Files are keyed by their git blob id, so an
index rebuilt after a few edits re-parses only the files that changed (`Index.build(..., previous=)`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import bm25s
import numpy as np

from devloop.retrieval.definitions import Definition, extract, skeleton
from devloop.retrieval.tokens import tokenize
from devloop.safefs import SafeFSError, SafeRoot

MAX_FILE_BYTES = 1_000_000
# Directories that hold no source worth ranking (and may be huge).
SKIPPED_DIRS = frozenset(
    {".git", ".devloop-git", ".devloop", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "build", "dist", ".eggs"}
)  # fmt: skip
TEXT_SUFFIXES = (".py", ".pyi", ".md", ".rst", ".txt", ".cfg", ".toml", ".ini", ".yaml", ".yml", ".json")


def blob_id(data: bytes) -> str:
    """Git's object id of a blob holding `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileDoc:
    path: str
    blob: str
    definitions: list[Definition]
    tokens: list[str]  # of the whole file, path included
    def_tokens: list[list[str]]


@dataclass(frozen=True)
class Hit:
    path: str
    score: float
    kind: str = "file"  # "file", or the definition's kind
    name: str = ""
    line: int = 1
    signature: str = ""


def read_tree(root: str) -> dict[str, bytes]:
    """Every indexable regular file beneath `root` (relative path -> bytes); links are skipped."""
    out: dict[str, bytes] = {}
    with SafeRoot(root) as safe:
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                entries = safe.listdir(rel)
            except SafeFSError:
                continue
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink:
                    continue
                if entry.is_dir and entry.name not in SKIPPED_DIRS:
                    stack.append(path)
                elif entry.is_file and path.endswith(TEXT_SUFFIXES):
                    try:
                        out[path] = safe.read_bytes(path, max_bytes=MAX_FILE_BYTES)
                    except SafeFSError:
                        continue
    return out


def _document(path: str, data: bytes) -> FileDoc:
    text = data.decode("utf-8", errors="replace")
    defs = extract(path, data)
    path_tokens = tokenize(path.replace("/", " ").replace(".", " "))
    def_tokens = [
        [*tokenize(d.name), *tokenize(d.name), *tokenize(d.signature), *tokenize(d.doc), *path_tokens]
        for d in defs
    ]
    return FileDoc(path, blob_id(data), defs, [*path_tokens, *path_tokens, *tokenize(text)], def_tokens)


@dataclass
class Index:
    """The ranked-retrieval index of one tree; `search` ranks files, `search_definitions` definitions."""

    files: list[FileDoc]
    tree: str  # an id of the whole tree: sha1 over the sorted (path, blob) pairs
    _file_bm25: bm25s.BM25 = field(repr=False, default=None)  # type: ignore[assignment]
    _def_bm25: bm25s.BM25 | None = field(repr=False, default=None)
    _def_owner: list[tuple[int, int]] = field(repr=False, default_factory=list)

    @classmethod
    def build(cls, contents: dict[str, bytes], previous: Index | None = None) -> Index:
        """Index `contents` (path -> bytes), reusing `previous`'s parsed files whose blob is unchanged."""
        known = {(f.path, f.blob): f for f in previous.files} if previous is not None else {}
        files: list[FileDoc] = []
        for path in sorted(contents):
            data = contents[path]
            reused = known.get((path, blob_id(data)))
            files.append(reused if reused is not None else _document(path, data))
        tree = hashlib.sha1("".join(f"{f.path}\0{f.blob}\n" for f in files).encode()).hexdigest()
        if previous is not None and previous.tree == tree:
            return previous
        index = cls(files, tree)
        index._file_bm25 = _bm25([f.tokens for f in files])
        owners = [(i, j) for i, f in enumerate(files) for j in range(len(f.definitions))]
        if owners:
            index._def_owner = owners
            index._def_bm25 = _bm25([files[i].def_tokens[j] for i, j in owners])
        return index

    @classmethod
    def of_directory(cls, root: str, previous: Index | None = None) -> Index:
        return cls.build(read_tree(root), previous)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` files that best match `query`, best first (files scoring 0 are left out)."""
        scores = _scores(self._file_bm25, query, len(self.files))
        return [Hit(self.files[i].path, float(scores[i])) for i in _top(scores, k)]

    def search_definitions(self, query: str, k: int = 10) -> list[Hit]:
        """The `k` definitions that best match `query`, best first."""
        if self._def_bm25 is None:
            return []
        scores = _scores(self._def_bm25, query, len(self._def_owner))
        hits = []
        for n in _top(scores, k):
            i, j = self._def_owner[n]
            d = self.files[i].definitions[j]
            hits.append(Hit(self.files[i].path, float(scores[n]), d.kind, d.name, d.line, d.signature))
        return hits

    def skeleton(self, path: str, max_lines: int = 60) -> str:
        doc = next((f for f in self.files if f.path == path), None)
        return skeleton(doc.definitions, max_lines) if doc is not None else ""


def _bm25(corpus: list[list[str]]) -> bm25s.BM25:
    model = bm25s.BM25()
    vocab: dict[str, int] = {}
    ids = [
        [vocab.setdefault(t, len(vocab)) for t in doc] or [vocab.setdefault("", len(vocab))] for doc in corpus
    ]
    model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    model.vocab_dict = vocab
    return model


def _scores(model: bm25s.BM25, query: str, n: int) -> np.ndarray:
    vocab = model.vocab_dict
    ids = [vocab[t] for t in tokenize(query) if t in vocab]
    if not ids:
        return np.zeros(n, dtype=np.float32)
    return np.asarray(model.get_scores(ids), dtype=np.float32)


def _top(scores: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if scores[i] > 0]
