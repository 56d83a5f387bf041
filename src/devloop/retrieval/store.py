"""The on-disk index cache: what each blob parses to (SQLite, keyed by blob id and language), and whole
built indexes keyed by their tree (NumPy arrays and JSON, never pickle, so a cache file can only ever
be data). A tree seen before loads without parsing; a changed tree re-parses only its new blobs.

The default place is the user's cache directory (`platformdirs`), `devloop/retrieval`; the last
`KEEP_TREES` trees are kept."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse as sp

from devloop.retrieval.definitions import Definition
from devloop.retrieval.index import FORMAT, FileDoc, Index, Parsed

KEEP_TREES = 8


def default_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("devloop")) / "retrieval"


def _def_row(d: Definition) -> list[object]:
    return [d.kind, d.name, d.line, d.end_line, d.signature, d.doc, d.depth]


def _def_of(row: list[object]) -> Definition:
    kind, name, line, end, sig, doc, depth = row
    return Definition(str(kind), str(name), int(line), int(end), str(sig), str(doc), int(depth))  # type: ignore[call-overload]


class IndexCache:
    """Blobs and trees under `root` (created on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.root / f"blobs-{FORMAT}.sqlite")
            self._db.execute("CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, payload BLOB)")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def get_blobs(self, keys: list[str]) -> dict[str, Parsed]:
        out: dict[str, Parsed] = {}
        db = self._conn()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, payload in db.execute(f"SELECT key, payload FROM blobs WHERE key IN ({marks})", chunk):
                try:
                    data = json.loads(zlib.decompress(payload))
                    out[key] = Parsed([_def_of(r) for r in data["d"]], dict(data["w"]))
                except (ValueError, KeyError, TypeError, zlib.error):
                    continue  # a damaged entry is parsed again
        return out

    def put_blobs(self, parsed: Mapping[str, Parsed]) -> None:
        rows = [
            (
                key,
                zlib.compress(
                    json.dumps({"d": [_def_row(d) for d in p.definitions], "w": p.words}).encode(), 1
                ),
            )
            for key, p in parsed.items()
        ]
        db = self._conn()
        with db:
            db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?)", rows)

    def _tree_dir(self, key: str) -> Path:
        return self.root / "trees" / key

    def load_tree(self, key: str) -> Index | None:
        where = self._tree_dir(key)
        try:
            meta = json.loads((where / "meta.json").read_text())
            arrays = np.load(where / "arrays.npz", allow_pickle=False)
            files = [FileDoc(p, b, [_def_of(r) for r in defs]) for p, b, defs in meta["files"]]
            index = Index(files, key)
            index._file_bm25 = _model(arrays, "file", meta["file_vocab"], len(files))
            owners = [(int(i), int(j)) for i, j in arrays["owners"]]
            index._def_owner = owners
            if owners:
                index._def_bm25 = _model(arrays, "def", meta["def_vocab"], len(owners))
            names = meta["ref_names"]
            ptr, ids, counts = arrays["ref_ptr"], arrays["ref_ids"], arrays["ref_counts"]
            index.refs = [
                {names[int(ids[n])]: int(counts[n]) for n in range(ptr[i], ptr[i + 1])}
                for i in range(len(files))
            ]
            for name in ("file", "def"):
                if f"{name}_cshape" in arrays:
                    shape = tuple(int(x) for x in arrays[f"{name}_cshape"])
                    counts = sp.csr_array(
                        (arrays[f"{name}_cdata"], arrays[f"{name}_cindices"], arrays[f"{name}_cindptr"]),
                        shape=shape,
                    )
                    setattr(index, f"_{name}_counts", counts)
                    setattr(index, f"_{name}_terms", [str(t) for t in meta[f"{name}_terms"]])
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        index._by_path = {f.path: i for i, f in enumerate(files)}
        index.loaded = True
        index.reused = len(files)
        os.utime(where)  # most recently used: kept longest
        return index

    def nearest_tree(self, listing: Mapping[str, str]) -> Index | None:
        """The cached tree sharing the most (path, blob) pairs with `listing`, if at least half of it
        (its unchanged files' rows are copied rather than tokenised again), with its count matrices."""
        trees = self.root / "trees"
        wanted = {f"{p}\0{b}" for p, b in listing.items()}
        best, best_n = None, len(wanted) // 2
        try:
            candidates = [p for p in trees.iterdir() if not p.name.startswith(".")]
        except OSError:
            return None
        for where in candidates:
            try:
                pairs = (where / "listing.txt").read_text().split("\n")
            except OSError:
                continue
            n = len(wanted.intersection(pairs))
            if n > best_n:
                best, best_n = where.name, n
        if best is None:
            return None
        index = self.load_tree(best)
        return index if index is not None and index._file_counts is not None else None

    def save_tree(self, index: Index) -> None:
        trees = self.root / "trees"
        trees.mkdir(parents=True, exist_ok=True)
        target = self._tree_dir(index.tree)
        if target.exists():
            return
        names: dict[str, int] = {}
        ptr, ids, counts = [0], [], []
        for refs in index.refs:
            for name, n in refs.items():
                ids.append(names.setdefault(name, len(names)))
                counts.append(n)
            ptr.append(len(ids))
        arrays: dict[str, np.ndarray] = {
            "owners": np.asarray(index._def_owner, dtype=np.int64).reshape(-1, 2),
            "ref_ptr": np.asarray(ptr, dtype=np.int64),
            "ref_ids": np.asarray(ids, dtype=np.int64),
            "ref_counts": np.asarray(counts, dtype=np.int64),
        }
        meta: dict[str, object] = {
            "files": [[f.path, f.blob, [_def_row(d) for d in f.definitions]] for f in index.files],
            "ref_names": list(names),
        }
        for name, counts in (("file", index._file_counts), ("def", index._def_counts)):
            if counts is not None:
                for part in ("data", "indices", "indptr"):
                    arrays[f"{name}_c{part}"] = np.asarray(getattr(counts, part))
                arrays[f"{name}_cshape"] = np.asarray(counts.shape, dtype=np.int64)
        meta["file_terms"] = index._file_terms
        meta["def_terms"] = index._def_terms
        for name, model in (("file", index._file_bm25), ("def", index._def_bm25)):
            if model is None:
                continue
            for part in ("data", "indices", "indptr"):
                arrays[f"{name}_{part}"] = np.asarray(model.scores[part])
            vocab = model.vocab_dict
            meta[f"{name}_vocab"] = sorted(vocab, key=vocab.__getitem__)
        tmp = Path(tempfile.mkdtemp(dir=trees, prefix=".tmp-"))
        try:
            np.savez(tmp / "arrays.npz", **arrays)  # type: ignore[arg-type]
            (tmp / "meta.json").write_text(json.dumps(meta))
            (tmp / "listing.txt").write_text("\n".join(f"{f.path}\0{f.blob}" for f in index.files))
            os.rename(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        self._evict(trees)

    def _evict(self, trees: Path) -> None:
        kept = sorted(
            (p for p in trees.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in kept[KEEP_TREES:]:
            shutil.rmtree(old, ignore_errors=True)


def with_cache(make: Callable[[IndexCache | None], Index], cache: IndexCache | None) -> tuple[Index, str]:
    """`make(cache)`, or `make(None)` when the cache cannot be used (an unwritable directory, a database
    another process holds locked or a damaged one): the cache only saves time, so a search never fails
    for it. Returns the index and, when the cache was given up, one line saying why."""
    from devloop.safefs import SafeFSError

    if cache is None:
        return make(None), ""
    try:
        return make(cache), ""
    except SafeFSError:
        raise  # the tree itself cannot be read: no cache would help
    except (OSError, sqlite3.Error) as e:
        return make(None), f"index cache {cache.root} not used: {e}"
    finally:
        cache.close()


def _model(arrays: np.lib.npyio.NpzFile, name: str, vocab: list[str], n_docs: int) -> bm25s.BM25:
    model = bm25s.BM25()
    model.scores = {
        "data": arrays[f"{name}_data"],
        "indices": arrays[f"{name}_indices"],
        "indptr": arrays[f"{name}_indptr"],
        "num_docs": n_docs,
    }
    model.vocab_dict = {t: i for i, t in enumerate(vocab)}
    model.nonoccurrence_array = None
    return model
