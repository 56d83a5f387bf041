"""Rankers over an index and their fusion by reciprocal rank (RRF: each ranker adds 1 / (60 + rank)).

A method names the rankers to fuse, joined by `+`: `bm25` (BM25 over code-aware tokens), `map` (the
repo map's personalised PageRank), `defs` (a file scored by its best definition's BM25), `emb` (an
embedding ranker, when one is configured). A `src:` prefix
ranks only source files: files of a language devloop parses, outside test directories and not named
like tests (a fix lives in the source; its tests come in a separate patch). `default` is the method
measured best on SWE-bench Lite (see the README's "Code search")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from devloop.retrieval.tokens import word_counts

if TYPE_CHECKING:
    from devloop.retrieval.index import Index

# The usual RRF constant is 60; at 60 a file ranked 2nd-3rd by every ranker beats one ranked 1st by two
# rankers and far down by the third. 10 weighs the top ranks more: measured on the mirrorable SWE-bench
# Lite records and, out of sample, on the Verified records not in Lite (README's "Code search").
RRF_K = 10
DEFAULT = "src:bm25+map+defs"
# How much more a definition counts when the issue writes its name.
MENTION_BOOST = 2.0

FileRanker = Callable[["Index", str], np.ndarray]
_FILE_RANKERS: dict[str, FileRanker] = {}
_DEF_RANKERS: dict[str, FileRanker] = {}


def register(name: str, files: FileRanker, definitions: FileRanker | None = None) -> None:
    """Make `name` usable in a method: `files(index, query)` scores every file (higher is better, 0 for
    no opinion), `definitions(index, query)` every definition."""
    _FILE_RANKERS[name] = files
    if definitions is not None:
        _DEF_RANKERS[name] = definitions


def _bm25_files(index: Index, query: str) -> np.ndarray:
    return index.file_scores(query)


def _bm25_defs(index: Index, query: str) -> np.ndarray:
    return index.definition_scores(query)


def _map_files(index: Index, query: str) -> np.ndarray:
    return index.repo_map().file_scores(query)


def _map_defs(index: Index, query: str) -> np.ndarray:
    return index.repo_map().definition_scores(query)


def _best_definition(index: Index, query: str) -> np.ndarray:
    """Per file, the BM25 score of its best-matching definition: a file with one definition about the
    issue is not buried by the length of the rest of it, as it is in the whole-file BM25."""
    scores = index.definition_scores(query)
    out = np.zeros(len(index.files), dtype=np.float64)
    if len(scores):
        # A file's definitions are contiguous (in file order), so one reduceat over their runs.
        owners = index.definition_owners()
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        out[owners[starts]] = np.maximum.reduceat(scores, starts)
    return out


register("bm25", _bm25_files, _bm25_defs)
register("map", _map_files, _map_defs)
register("defs", _best_definition)  # over definitions it is `bm25`'s own ranker


_TEST_DIRS = frozenset({"tests", "test", "testing"})


def is_test(path: str) -> bool:
    parts = path.split("/")
    base = parts[-1]
    return (
        any(p in _TEST_DIRS for p in parts[:-1])
        or base.startswith("test_")
        or base.endswith(("_test.py", "_tests.py"))
        or base in ("conftest.py", "tests.py")
    )


def source_mask(index: Index) -> np.ndarray:
    """Which files are source (parsed language, not a test); all of them when none is."""
    from devloop.retrieval.definitions import language_of

    got = index.extras.get("source_mask")
    if isinstance(got, np.ndarray):
        return got
    mask = np.fromiter(
        (language_of(f.path) is not None and not is_test(f.path) for f in index.files),
        dtype=bool,
        count=len(index.files),
    )
    if not mask.any():
        mask[:] = True
    index.extras["source_mask"] = mask
    return mask


def _split(method: str) -> tuple[bool, str]:
    method = DEFAULT if method == "default" else method
    return (True, method[4:]) if method.startswith("src:") else (False, method)


def parse_method(method: str) -> list[str]:
    names = _split(method)[1].split("+")
    unknown = [n for n in names if n not in _FILE_RANKERS]
    if unknown or not names:
        known = ", ".join(sorted(_FILE_RANKERS))
        raise ValueError(f"unknown ranker {'+'.join(unknown) or method!r} (known: {known}, joined by +)")
    return names


def rrf(score_lists: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Reciprocal-rank fusion: per item, the sum over rankers of weight / (RRF_K + its rank there),
    counting only rankers that give it a positive score."""
    if not score_lists:
        return np.zeros(0)
    fused = np.zeros(len(score_lists[0]))
    for scores, weight in zip(score_lists, weights or [1.0] * len(score_lists), strict=True):
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(len(scores))
        ranks[order] = np.arange(1, len(scores) + 1)
        fused += np.where(scores > 0, weight / (RRF_K + ranks), 0.0)
    return fused


def _ordered(scores: np.ndarray) -> list[tuple[int, float]]:
    positive = np.flatnonzero(scores > 0)
    order = positive[np.argsort(-scores[positive], kind="stable")]
    return list(zip(order.tolist(), scores[order].tolist(), strict=True))


def file_scores(index: Index, query: str, method: str = "default") -> np.ndarray:
    # Kept for the query's next call: `search` and then `search_definitions` (its file prior) ask for
    # the same fused scores, and the rankers behind them are the bulk of a query's time.
    names = parse_method(method)
    key = (query, method, tuple(_FILE_RANKERS[n] for n in names))  # a ranker registered again: recompute
    last = index.extras.get("last_file_scores")
    if isinstance(last, tuple) and last[0] == key:
        return last[1]
    lists = [_FILE_RANKERS[n](index, query) for n in names]
    if _split(method)[0]:
        mask = source_mask(index)
        lists = [np.where(mask, s, 0.0) for s in lists]
    fused = lists[0] if len(lists) == 1 else rrf(lists)
    fused.setflags(write=False)  # shared between calls: a caller must not change it in place
    index.extras["last_file_scores"] = (key, fused)
    return fused


def rank_files(index: Index, query: str, method: str = "default") -> list[tuple[int, float]]:
    """(file position, score), best first, for files some ranker scores."""
    return _ordered(file_scores(index, query, method))


def rank_definitions(index: Index, query: str, method: str = "default") -> list[tuple[int, float]]:
    """(definition position, score), best first. One ranker: its own definition scores. A fusion: each
    definition's BM25 match (its name, signature, docstring and path) times its file's fused score (a
    prior: the file the whole issue points to), doubled when the issue names the definition (its
    short name among the issue's identifiers). Measured against RRF of the definition rankers plus
    the file rank (README's "Code search"): more functions found at every cut-off."""
    names = parse_method(method)
    src = _split(method)[0]
    owners = index.definition_owners()
    if len(names) == 1:
        ranker = _DEF_RANKERS.get(names[0], _bm25_defs)
        scores = np.asarray(ranker(index, query), dtype=np.float64)
    else:
        scores = index.definition_scores(query).astype(np.float64)
        if len(scores):
            scores *= file_scores(index, query, method)[owners]
            by_name = index.definitions_named()
            for word in word_counts(query):
                at = by_name.get(word)
                if at is not None:
                    scores[at] *= MENTION_BOOST
    if src and len(scores):
        scores = np.where(source_mask(index)[owners], scores, 0.0)
    return _ordered(scores) if len(scores) else []
