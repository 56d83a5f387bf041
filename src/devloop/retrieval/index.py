"""A BM25 index (bm25s) over one repository tree: a document per file and one per definition.

A directory is read through `safefs.SafeRoot` (`parsing`), so a symbolic link is never followed (a
model-written tree may point anywhere) and a FIFO or device is never opened; a commit of a mirror is read
with git plumbing (`gittree`). The count matrices and BM25 models are built in `counts`. Files are keyed by their git blob id: an index rebuilt after a few edits re-parses only the
files that changed (`previous=`, in memory, or `cache=`, on disk, where a whole tree seen before is
loaded without parsing anything).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import bm25s
import numpy as np
import scipy.sparse as sp

from devloop.retrieval.counts import (
    _bm25,
    _compact,
    _count_rows,
    _counts,
    _file_counts,
    _merge,
    _scores,
    _vocab,
    bm25_of_counts,
    definition_tokens,
    path_tokens,
)
from devloop.retrieval.definitions import Definition, skeleton
from devloop.retrieval.parsing import (
    MAX_FILE_BYTES,
    PARALLEL_MIN_FILES,
    SKIPPED_DIRS,
    TEXT_SUFFIXES,
    Parsed,
    Reader,
    _parse_all,
    blob_id,
    indexable,
    parse,
    parse_key,
    read_tree,
    workers,
)
from devloop.retrieval.tokens import word_tokens

if TYPE_CHECKING:
    from devloop.retrieval.repomap import RepoMap
    from devloop.retrieval.store import IndexCache

# Moved to `parsing` and `counts`; named here too for the callers that import them from this module.
__all__ = [
    "FORMAT", "MAX_FILE_BYTES", "PARALLEL_MIN_FILES", "SKIPPED_DIRS", "TEXT_SUFFIXES", "Definition",
    "FileDoc", "Hit", "Index", "Parsed", "Reader", "_bm25", "blob_id", "bm25_of_counts", "indexable",
    "parse", "parse_key", "read_tree", "tree_key", "workers",
]  # fmt: skip

# Bumped whenever what is stored per blob or per tree changes meaning, so an old cache is never misread.
FORMAT = 3


def tree_key(listing: Mapping[str, str]) -> str:
    """An id of a whole tree: sha1 over its sorted (path, blob) pairs and the index format."""
    body = "".join(f"{p}\0{listing[p]}\n" for p in sorted(listing))
    return hashlib.sha1(f"devloop-index-{FORMAT}\n{body}".encode()).hexdigest()


@dataclass
class FileDoc:
    path: str
    blob: str
    definitions: list[Definition]
    words: dict[str, int] | None = None  # raw identifier counts; None when loaded from a tree cache


@dataclass(frozen=True)
class Hit:
    path: str
    score: float
    kind: str = "file"  # "file", or the definition's kind
    name: str = ""
    line: int = 1
    signature: str = ""


def _names(files: list[FileDoc]) -> set[str]:
    return {d.name.rsplit(".", 1)[-1] for f in files for d in f.definitions}


def _may_use_new_names(files: list[FileDoc], base: Index) -> list[FileDoc]:
    """The files without words (kept from a cached `base`) whose BM25 row holds a token of a name this
    tree defines and `base` did not: a superset of those whose references gain a name."""
    lacking = [f for f in files if f.words is None]
    new = _names(files) - _names(base.files)
    if not new or not lacking:
        return []
    column = {t: i for i, t in enumerate(base._file_terms)}
    cols: set[int] = set()
    for name in new:
        tokens = word_tokens(name)
        if not tokens:  # a name made only of stopwords: no column tells who uses it
            return lacking
        # A file using the name holds every one of its tokens; the last (the whole identifier, when it
        # has parts) is the rarest.
        if tokens[-1] in column:
            cols.add(column[tokens[-1]])
    if not cols or base._file_counts is None:
        return []
    rows = base._file_counts
    wanted = np.zeros(rows.shape[1], dtype=bool)
    wanted[sorted(cols)] = True
    position = {(f.path, f.blob): i for i, f in enumerate(base.files)}
    out = []
    for f in lacking:
        i = position.get((f.path, f.blob))
        if i is None:
            out.append(f)  # not in base's rows: nothing tells, so read its words
            continue
        start, end = rows.indptr[i], rows.indptr[i + 1]
        if end > start and wanted[rows.indices[start:end]].any():
            out.append(f)
    return out


def _fill_words(
    files: list[FileDoc], keys: Mapping[str, str], read: Reader, cache: IndexCache | None
) -> None:
    if not files:
        return
    got = cache.get_blobs(sorted({keys[f.path] for f in files})) if cache is not None else {}
    lacking = [f.path for f in files if keys[f.path] not in got]
    got.update(_parse_all(lacking, read, keys))
    for f in files:
        p = got.get(keys[f.path])
        f.words = p.words if p is not None else {}


@dataclass
class Index:
    """The ranked-retrieval index of one tree; `search` ranks files, `search_definitions` definitions."""

    files: list[FileDoc]
    tree: str  # tree_key of the indexed files
    _file_bm25: bm25s.BM25 = field(repr=False, default=None)  # type: ignore[assignment]
    _def_bm25: bm25s.BM25 | None = field(repr=False, default=None)
    _def_owner: list[tuple[int, int]] = field(repr=False, default_factory=list)
    # Per file, the identifiers it uses that some file of the tree defines (for the repo map).
    refs: list[dict[str, int]] = field(repr=False, default_factory=list)
    _map: RepoMap | None = field(repr=False, default=None)
    _by_path: dict[str, int] = field(repr=False, default_factory=dict)
    # Filled by a ranker that needs per-index state (embedding vectors); keyed by the ranker's name.
    extras: dict[str, object] = field(repr=False, default_factory=dict)
    # Raw (documents x terms) counts and their terms, kept so a later tree can reuse unchanged rows.
    _file_counts: sp.csr_array | None = field(repr=False, default=None)
    _file_terms: list[str] = field(repr=False, default_factory=list)
    _def_counts: sp.csr_array | None = field(repr=False, default=None)
    _def_terms: list[str] = field(repr=False, default_factory=list)
    reused: int = 0  # how many files came from `previous` or the cache rather than being parsed
    loaded: bool = False  # the whole index came from the tree cache

    @classmethod
    def build(
        cls, contents: Mapping[str, bytes], previous: Index | None = None, cache: IndexCache | None = None
    ) -> Index:
        """Index `contents` (path -> bytes), reusing `previous`'s parsed files whose blob is unchanged."""
        listing = {p: blob_id(d) for p, d in contents.items() if len(d) <= MAX_FILE_BYTES}
        return cls.of_listing(listing, lambda paths: {p: contents[p] for p in paths}, previous, cache)

    @classmethod
    def of_directory(cls, root: str, previous: Index | None = None, cache: IndexCache | None = None) -> Index:
        return cls.build(read_tree(root), previous, cache)

    @classmethod
    def of_listing(
        cls,
        listing: Mapping[str, str],
        read: Reader,
        previous: Index | None = None,
        cache: IndexCache | None = None,
    ) -> Index:
        """Index the files of `listing` (path -> blob id); `read(paths)` gives the bytes of those not
        already known to `previous` or `cache`."""
        listing = {p: b for p, b in listing.items() if indexable(p)}
        key = tree_key(listing)
        if previous is not None and previous.tree == key:
            return previous
        if cache is not None:
            hit = cache.load_tree(key)
            if hit is not None:
                return hit
        # A base to copy unchanged rows from: the previous index, or the cached tree most like this one.
        base = previous if previous is not None and previous._file_counts is not None else None
        if base is None and cache is not None:
            base = cache.nearest_tree(listing)
        base_docs = {(f.path, f.blob): f for f in base.files} if base is not None else {}
        keys = {p: parse_key(p, b) for p, b in listing.items()}
        need = [p for p in sorted(listing) if (p, listing[p]) not in base_docs]
        known: dict[str, Parsed] = {}
        if previous is not None:
            known = {
                parse_key(f.path, f.blob): Parsed(f.definitions, f.words)
                for f in previous.files
                if f.words is not None
            }
        missing = sorted({keys[p] for p in need if keys[p] not in known})
        if cache is not None and missing:
            known.update(cache.get_blobs(missing))
        to_read = sorted(p for p in need if keys[p] not in known)
        fresh = _parse_all(to_read, read, keys)
        known.update(fresh)
        if cache is not None and fresh:
            cache.put_blobs(fresh)
        files = [
            base_docs.get((p, listing[p]))
            or FileDoc(p, listing[p], known[keys[p]].definitions, known[keys[p]].words)
            for p in sorted(listing)
            if (p, listing[p]) in base_docs or keys[p] in known
        ]
        if base is not None:
            # A kept file that may use a name the tree newly defines needs its words for its references.
            _fill_words(_may_use_new_names(files, base), keys, read, cache)
        index = cls.assemble(files, key, base)
        index.reused = len(files) - len(fresh)
        if cache is not None:
            cache.save_tree(index)
        return index

    @classmethod
    def assemble(cls, files: list[FileDoc], key: str, base: Index | None = None) -> Index:
        """Build the BM25 models and the reference table of parsed `files`. With `base` (an index of a
        similar tree that kept its count matrices), the rows of every file whose path and blob are
        unchanged are copied from `base`, so only the changed files are tokenised again."""
        index = cls(files, key)
        old: dict[tuple[str, str], int] = {}
        if base is not None and base._file_counts is not None and base._def_counts is not None:
            old = {(f.path, f.blob): i for i, f in enumerate(base.files)}
        kept = [(n, old[(f.path, f.blob)]) for n, f in enumerate(files) if (f.path, f.blob) in old]
        kept_set = {n for n, _ in kept}
        new = [n for n in range(len(files)) if n not in kept_set]
        if kept and base is not None:
            file_terms, def_terms = list(base._file_terms), list(base._def_terms)
        else:
            file_terms, def_terms = [], []
        file_vocab = {t: i for i, t in enumerate(file_terms)}
        def_vocab = {t: i for i, t in enumerate(def_terms)}
        paths = {n: path_tokens(files[n].path) for n in new}
        fresh = _file_counts([files[n] for n in new], [paths[n] for n in new], file_vocab)
        owners = [(i, j) for i, f in enumerate(files) for j in range(len(f.definitions))]
        new_defs = [(i, j) for i, j in owners if i not in kept_set]
        fresh_defs = _count_rows(
            [_counts(definition_tokens(files[i].definitions[j], paths[i])) for i, j in new_defs], def_vocab
        )
        if kept and base is not None:
            assert base._file_counts is not None and base._def_counts is not None
            file_counts = _merge(
                base._file_counts, [o for _, o in kept], [n for n, _ in kept], fresh, new, len(file_vocab)
            )
            # A file's definitions are contiguous rows of `base`'s definition matrix.
            starts = np.zeros(len(base.files) + 1, dtype=np.int64)
            for i, _ in base._def_owner:
                starts[i + 1] += 1
            starts = np.cumsum(starts)
            old_rows: list[int] = []
            old_pos: list[int] = []
            new_pos: list[int] = []
            pos = 0
            for i, f in enumerate(files):
                if i in kept_set:
                    o = old[(f.path, f.blob)]
                    old_rows.extend(range(int(starts[o]), int(starts[o + 1])))
                    old_pos.extend(range(pos, pos + len(f.definitions)))
                else:
                    new_pos.extend(range(pos, pos + len(f.definitions)))
                pos += len(f.definitions)
            def_counts = _merge(base._def_counts, old_rows, old_pos, fresh_defs, new_pos, len(def_vocab))
        else:
            file_counts, def_counts = fresh, fresh_defs
        index._file_counts, index._file_terms = _compact(file_counts, list(file_vocab))
        index._def_counts, index._def_terms = _compact(def_counts, list(def_vocab))
        index._file_bm25 = bm25_of_counts(index._file_counts, _vocab(index._file_terms))
        if owners:
            index._def_owner = owners
            index._def_bm25 = bm25_of_counts(index._def_counts, _vocab(index._def_terms))
        index.refs = _references(files, kept, base)
        index._by_path = {f.path: i for i, f in enumerate(files)}
        return index

    def file_scores(self, query: str) -> np.ndarray:
        """BM25 score of every file (in `files` order) for `query`."""
        return _scores(self._file_bm25, query, len(self.files))

    def definition_scores(self, query: str) -> np.ndarray:
        """BM25 score of every definition (in `definitions()` order) for `query`."""
        if self._def_bm25 is None:
            return np.zeros(0, dtype=np.float32)
        return _scores(self._def_bm25, query, len(self._def_owner))

    def definitions(self) -> list[tuple[int, Definition]]:
        """Every definition of the tree with the index of its file, in the order of `definition_scores`
        (built once per index: a query asks for it, and a large tree has tens of thousands)."""
        got = self.extras.get("definitions")
        if not isinstance(got, list):
            got = [(i, self.files[i].definitions[j]) for i, j in self._def_owner]
            self.extras["definitions"] = got
        return got

    def definitions_named(self) -> dict[str, list[int]]:
        """Short definition name (`method` of `Class.method`) -> the positions of the definitions so named."""
        got = self.extras.get("definitions_named")
        if not isinstance(got, dict):
            got = {}
            for n, (_, d) in enumerate(self.definitions()):
                got.setdefault(d.name.rsplit(".", 1)[-1], []).append(n)
            self.extras["definitions_named"] = got
        return got

    def definition_owners(self) -> np.ndarray:
        """The file position of each definition, in the order of `definition_scores`."""
        got = self.extras.get("definition_owners")
        if not isinstance(got, np.ndarray):
            got = np.fromiter((i for i, _ in self._def_owner), dtype=np.int64, count=len(self._def_owner))
            self.extras["definition_owners"] = got
        return got

    def position(self, path: str) -> int | None:
        return self._by_path.get(path)

    def repo_map(self) -> RepoMap:
        from devloop.retrieval.repomap import RepoMap

        if self._map is None:
            self._map = RepoMap(self)
        return self._map

    def search(self, query: str, k: int = 10, method: str = "default") -> list[Hit]:
        """The `k` files that best match `query`, best first (files no ranker scores are left out).
        `method`: "bm25", "map", "bm25+map" (reciprocal-rank fusion), ... (see `rank.METHODS`)."""
        from devloop.retrieval.rank import rank_files

        return [Hit(self.files[i].path, s) for i, s in rank_files(self, query, method)[:k]]

    def search_definitions(self, query: str, k: int = 10, method: str = "default") -> list[Hit]:
        """The `k` definitions that best match `query`, best first."""
        from devloop.retrieval.rank import rank_definitions

        hits = []
        for n, score in rank_definitions(self, query, method)[:k]:
            i, j = self._def_owner[n]
            d = self.files[i].definitions[j]
            hits.append(Hit(self.files[i].path, score, d.kind, d.name, d.line, d.signature))
        return hits

    def skeleton(self, path: str, max_lines: int = 60) -> str:
        i = self._by_path.get(path)
        return skeleton(self.files[i].definitions, max_lines) if i is not None else ""


def _references(
    files: list[FileDoc], kept: list[tuple[int, int]], base: Index | None
) -> list[dict[str, int]]:
    """Per file, the identifiers it uses that some file of the tree defines: from its words, or for a
    kept file without them, `base`'s table less the names no longer defined (such a file uses none of
    the names new to this tree: see `_may_use_new_names`)."""
    defined = _names(files)
    base_of = dict(kept) if base is not None else {}
    out = []
    for n, f in enumerate(files):
        if f.words is None and n in base_of and base is not None:
            out.append({w: c for w, c in base.refs[base_of[n]].items() if w in defined})
        else:
            out.append({w: c for w, c in (f.words or {}).items() if w in defined})
    return out
