"""A repository map in the manner of Aider: files linked by the identifiers one uses and another defines,
ranked by PageRank (networkx) personalised by what the issue mentions, rendered within a token budget.

An edge r -> f says file r uses a name that f defines; its weight grows with the square root of how often
r uses it, and is cut for private names (`_x`) and names many files define (`get`, `run`), which say
little about where a change belongs. The personalisation puts the teleport mass on the files the issue
names (a path, a dotted module, a file name) and on the files defining the identifiers it mentions.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from devloop.retrieval.tokens import word_counts

if TYPE_CHECKING:
    import networkx as nx

    from devloop.retrieval.index import Index

_ALPHA = 0.85
_COMMON = 5  # a name defined by more files than this is common
_MIN_NAME = 3
_PATHLIKE = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.pyi?\b|[\w.-]+(?:/[\w.-]+)+")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_CAMEL = re.compile(r"[a-z][A-Z]")


_SOURCE_ROOTS = ("src/", "lib/")


def module_names(path: str) -> list[str]:
    """The dotted modules a Python file's path stands for: its path with dots, and in a src layout
    (`src/flask/app.py`) the importable name too (`flask.app`); only names with a dot."""
    if not path.endswith((".py", ".pyi")):
        return []
    module = path.removesuffix(".pyi").removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    names = [module]
    for root in _SOURCE_ROOTS:
        if path.startswith(root):
            names.append(module[len(root) :])
    return [m for m in names if m.count(".") >= 1]


def _weight(name: str, n_definers: int) -> float:
    w = 1.0
    if name.startswith("_"):
        w *= 0.1
    if n_definers > _COMMON:
        w *= 0.1
    if len(name) >= 8 and ("_" in name.strip("_") or _CAMEL.search(name)):
        w *= 3.0  # a long compound name is specific
    return w


class RepoMap:
    """The reference graph of one index; `file_scores` and `definition_scores` rank for an issue."""

    def __init__(self, index: Index) -> None:
        self.index = index
        n = len(index.files)
        definers: dict[str, list[int]] = {}
        for i, f in enumerate(index.files):
            for d in f.definitions:
                short = d.name.rsplit(".", 1)[-1]
                if len(short) >= _MIN_NAME and not (short.startswith("__") and short.endswith("__")):
                    owners = definers.setdefault(short, [])
                    if not owners or owners[-1] != i:
                        owners.append(i)
        self.definers = definers
        self.names = {name: k for k, name in enumerate(definers)}
        self.weights = {name: _weight(name, len(owners)) for name, owners in definers.items()}
        # Every (file, name used, count) at once: a large tree has hundreds of thousands, and this runs in
        # each new process that ranks with the map.
        find = self.names.get
        used = [find(name, -1) for refs in index.refs for name in refs]
        counts = np.fromiter(
            (c for refs in index.refs for c in refs.values()), dtype=np.float64, count=len(used)
        )
        rows = np.repeat(np.arange(n), [len(refs) for refs in index.refs])
        cols = np.asarray(used, dtype=np.int64)
        keep = cols >= 0
        weight = np.fromiter(self.weights.values(), dtype=np.float64, count=len(self.weights))
        vals = weight[cols[keep]] * np.sqrt(counts[keep])
        names = len(self.names)
        uses = sp.csr_array((vals, (rows[keep], cols[keep])), shape=(n, names))
        # name -> defining file, each owner taking an equal share
        d_rows = [k for name, k in self.names.items() for _ in definers[name]]
        d_cols = [f for name in self.names for f in definers[name]]
        d_vals = [1.0 / len(definers[name]) for name in self.names for _ in definers[name]]
        owns = sp.csr_array((d_vals, (d_rows, d_cols)), shape=(names, n))
        adjacency = sp.csr_array(uses @ owns)
        adjacency.setdiag(0)
        adjacency.eliminate_zeros()
        self.adjacency = adjacency
        self._uses = _row_normalised(uses)
        # PageRank as sparse products on this matrix: networkx's `pagerank` would convert its graph to
        # the same matrix on every call (seconds on a large tree); `graph` gives the networkx graph.
        self._transition = _row_normalised(adjacency)
        self._dangling = np.asarray(adjacency.sum(axis=1)).ravel() == 0
        self._graph: nx.DiGraph | None = None
        self._global: np.ndarray | None = None
        self._paths: dict[str, int] = {}
        self._bases: dict[str, list[int]] = {}
        for i, f in enumerate(index.files):
            path = f.path
            self._paths[path] = i
            if "/" in path:
                self._paths.setdefault(path.split("/", 1)[1], i)
            for module in module_names(path):
                self._paths.setdefault(module, i)
            base = path.rsplit("/", 1)[-1]
            if base != "__init__.py":
                self._bases.setdefault(base, []).append(i)
        self._last: tuple[str, np.ndarray, set[str], np.ndarray] | None = None

    @property
    def graph(self) -> nx.DiGraph:
        """The reference graph as a networkx DiGraph (file positions as nodes, `weight` on edges)."""
        if self._graph is None:
            import networkx as nx  # here: ~0.1-0.3 s of import that ranking (sparse products) never needs

            self._graph = nx.from_scipy_sparse_array(self.adjacency, create_using=nx.DiGraph)
        return self._graph

    def mentions(self, issue: str) -> tuple[dict[int, float], set[str]]:
        """The files `issue` names (position -> weight: 1 for a path or dotted module, 0.5 for a bare
        file name) and the defined identifiers it mentions."""
        files: dict[int, float] = {}
        text = issue.replace("\\", "/")
        for m in _PATHLIKE.finditer(text):
            parts = m.group(0).strip("./").split("/")
            # the longest tail that is a known path (a traceback shows absolute paths)
            for start in range(len(parts) - 1):
                hit = self._paths.get("/".join(parts[start:]))
                if hit is not None:
                    files[hit] = 1.0
                    break
            for i in self._bases.get(parts[-1], ()):
                files.setdefault(i, 0.5)
        for m in _DOTTED.finditer(text):
            dotted = m.group(0)
            while dotted.count(".") >= 1:
                hit = self._paths.get(dotted)
                if hit is not None:
                    files[hit] = 1.0
                    break
                dotted = dotted.rsplit(".", 1)[0]  # `pkg.mod.Class.method` names pkg/mod.py
        names = {w for w in word_counts(issue) if w in self.definers}
        return files, names

    def personalisation(self, issue: str) -> tuple[np.ndarray, set[str]]:
        n = len(self.index.files)
        p = np.zeros(n)
        files, names = self.mentions(issue)
        for i, w in files.items():
            p[i] += w
        for name in names:
            owners = self.definers[name]
            for f in owners:
                p[f] += self.weights[name] / len(owners)
        return p, names

    def pagerank(self, personal: np.ndarray, tol: float = 1.0e-6, max_iter: int = 100) -> np.ndarray:
        """Personalised PageRank over the reference graph, in file order: networkx's formulation
        (`nx.pagerank` with the same weights gives the same ranks), dangling files teleporting by the
        personalisation."""
        n = len(personal)
        if n == 0:
            return np.zeros(0)
        p = personal / personal.sum() if personal.sum() > 0 else np.full(n, 1.0 / n)
        x = np.full(n, 1.0 / n)
        for _ in range(max_iter):
            last = x
            x = _ALPHA * (x @ self._transition + x[self._dangling].sum() * p) + (1 - _ALPHA) * p
            if np.abs(x - last).sum() < n * tol:
                break
        return x

    def _ranked(self, issue: str) -> tuple[np.ndarray, set[str], np.ndarray]:
        """(personalisation, mentioned names, PageRank) for `issue`, kept for the next call."""
        if self._last is None or self._last[0] != issue:
            personal, names = self.personalisation(issue)
            ranks = self.pagerank(personal) if personal.any() else np.zeros(len(personal))
            self._last = (issue, personal, names, ranks)
        return self._last[1], self._last[2], self._last[3]

    def file_scores(self, issue: str) -> np.ndarray:
        """Per file, its personalised PageRank over its plain PageRank: how much the issue lifts it.
        Raw personalised ranks favour hub files every file imports (measured: they bury the files the
        issue is about); all 0 when the issue mentions nothing the map knows."""
        ranks = self._ranked(issue)[2]
        if not ranks.any():
            return ranks
        if self._global is None:
            self._global = self.pagerank(np.ones(len(ranks)))
        return ranks / np.maximum(self._global, 1e-12)

    def definition_scores(self, issue: str) -> np.ndarray:
        """A score per definition (in `Index.definitions()` order): the rank flowing to its name from the
        files that use it, raised when the issue mentions the name, plus a share of its file's rank."""
        personal, mentioned, pr = self._ranked(issue)
        if not personal.any():
            return np.zeros(len(self.index.definitions()))
        qualified = set(_DOTTED.findall(issue))
        qualified |= {q.split(".", i)[-1] for q in list(qualified) for i in range(1, q.count(".") + 1)}
        flow = pr @ self._uses
        out = []
        for i, d in self.index.definitions():
            short = d.name.rsplit(".", 1)[-1]
            k = self.names.get(short)
            s = pr[i] * 0.1
            if k is not None:
                s += flow[k] / len(self.definers[short])
            if short in mentioned:
                s *= 10.0
            if "." in d.name and d.name in qualified:  # `Class.method` as the issue writes it
                s *= 10.0
            out.append(s)
        return np.asarray(out, dtype=np.float64)

    def render(self, issue: str, tokens: int = 1024) -> str:
        """The best definitions for `issue`, grouped by file (best file first), each as `line: signature`,
        as many as fit in about `tokens` tokens (4 characters a token)."""
        scores = self.definition_scores(issue)
        order = [int(n) for n in np.argsort(-scores, kind="stable") if scores[n] > 0]
        defs = self.index.definitions()
        lo, hi, best = 0, len(order), ""
        while lo <= hi:  # the most definitions whose rendering fits
            mid = (lo + hi) // 2
            text = self._text([defs[n] for n in order[:mid]])
            if len(text) <= tokens * 4:
                best, lo = text, mid + 1
            else:
                hi = mid - 1
        return best

    def _text(self, chosen: list[tuple[int, object]]) -> str:
        by_file: dict[int, list[object]] = {}
        for i, d in chosen:
            by_file.setdefault(i, []).append(d)
        blocks = []
        for i, ds in by_file.items():
            lines = [self.index.files[i].path + ":"]
            for d in sorted(ds, key=lambda d: d.line):  # type: ignore[attr-defined]
                lines.append(f"{d.line:>5}: {'    ' * d.depth}{d.signature}")  # type: ignore[attr-defined]
            blocks.append("\n".join(lines))
        return "\n".join(blocks)


def _row_normalised(m: sp.csr_array) -> sp.csr_array:
    total = np.asarray(m.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv = np.where(total > 0, 1.0 / total, 0.0)
    return sp.csr_array(sp.diags_array(inv) @ m)
