"""The on-disk cache, the repo map, reciprocal-rank fusion, the vectorised BM25 and the embedding rankers."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import bm25s
import networkx as nx
import numpy as np
import pytest

from devloop.retrieval import Index, embed, rank
from devloop.retrieval.index import FORMAT, _bm25
from devloop.retrieval.store import IndexCache

TREE = {
    "pkg/cookies.py": b'class CookieJar:\n    """Cookies kept between requests."""\n\n'
    b"    def set_cookie(self, name):\n        return parse_cookie_header(name)\n",
    "pkg/headers.py": b"def parse_cookie_header(line):\n    return line.split(';')\n",
    "pkg/session.py": b"from pkg.cookies import CookieJar\n\ndef make_session():\n    return CookieJar()\n",
    "pkg/maths.py": b"def add(a, b):\n    return a + b\n",
    "tests/test_cookies.py": b"def test_cookie_jar():\n    CookieJar().set_cookie('a')\n",
}


def test_cache_loads_a_seen_tree_and_reparses_only_changed_blobs(tmp_path: Path) -> None:
    reads: list[list[str]] = []

    def build(contents: dict[str, bytes]) -> Index:
        listing = {p: Index.build({p: d}).files[0].blob for p, d in contents.items()}

        def read(paths: list[str]) -> dict[str, bytes]:
            reads.append(paths)
            return {p: contents[p] for p in paths}

        return Index.of_listing(listing, read, cache=IndexCache(tmp_path))

    first = build(TREE)
    assert not first.loaded and reads == [sorted(TREE)]
    again = build(TREE)
    assert again.loaded and reads[1:] == []  # nothing read: the tree came from disk
    assert [h.path for h in again.search("cookie header", 5, "bm25")] == [
        h.path for h in first.search("cookie header", 5, "bm25")
    ]
    assert again.search_definitions("parse cookie header", 1, "bm25")[0].line == 1
    changed = {**TREE, "pkg/maths.py": b"def multiply(a, b):\n    return a * b\n"}
    third = build(changed)
    assert reads[-1] == ["pkg/maths.py"] and third.reused == len(TREE) - 1
    assert third.search_definitions("multiply", 1)[0].name == "multiply"
    (tmp_path / f"blobs-{FORMAT}.sqlite").write_bytes(
        b"not a database"
    )  # a damaged cache is an error, not data
    with pytest.raises(Exception, match="database"):
        IndexCache(tmp_path).get_blobs(["x"])


def test_vectorised_bm25_matches_bm25s() -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(40)]
    corpus = [[rng.choice(words) for _ in range(rng.randint(0, 25))] for _ in range(30)]
    ours = _bm25(corpus)
    ref = bm25s.BM25()
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in d] or [vocab.setdefault("", len(vocab))] for d in corpus]
    ref.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    for query in (["w1"], ["w2", "w3", "w7"]):
        mine = ours.get_scores([ours.vocab_dict[t] for t in query])
        theirs = ref.get_scores([vocab[t] for t in query])
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_repo_map_pagerank_is_networkx_and_follows_mentions() -> None:
    index = Index.build(TREE)
    m = index.repo_map()
    session, cookies = index.position("pkg/session.py"), index.position("pkg/cookies.py")
    assert m.graph.has_edge(session, cookies)  # session uses CookieJar, defined in cookies.py
    personal = np.zeros(len(index.files))
    personal[session] = 1.0
    ours = m.pagerank(personal, tol=1e-10, max_iter=1000)
    theirs = nx.pagerank(m.graph, personalization={session: 1.0}, weight="weight", tol=1e-10, max_iter=1000)
    np.testing.assert_allclose(ours, [theirs[i] for i in range(len(ours))], atol=1e-6)
    files, names = m.mentions("make_session() in pkg/session.py builds a CookieJar")
    assert files[session] == 1.0 and {"make_session", "CookieJar"} <= names
    # In a src layout an issue writes the importable module (`pkg.headers`), not `src.pkg.headers`.
    src = Index.build({f"src/{p}": d for p, d in TREE.items() if p.startswith("pkg/")})
    named, _ = src.repo_map().mentions("pkg.headers.parse_cookie_header drops spaces")
    assert named == {src.position("src/pkg/headers.py"): 1.0}
    top = index.search("parse_cookie_header drops spaces", 1, "src:map")
    assert top[0].path == "pkg/headers.py"
    assert index.search("zebra quantum", 5, "map") == []  # no mention: the map has no opinion
    small, large = m.render("CookieJar set_cookie", tokens=12), m.render("CookieJar set_cookie", tokens=400)
    assert len(small) <= 48 and small.count("\n") < large.count("\n")
    assert "pkg/cookies.py:" in large and "    4:     def set_cookie(self, name)" in large


def test_fusion_and_source_filter() -> None:
    fused = rank.rrf([np.array([3.0, 2.0, 0.0]), np.array([0.0, 5.0, 1.0])])
    assert fused[1] > fused[0] > fused[2] > 0
    index = Index.build(TREE)
    assert "tests/test_cookies.py" in [h.path for h in index.search("cookie jar", 10, "bm25")]
    assert "tests/test_cookies.py" not in [h.path for h in index.search("cookie jar", 10, "src:bm25")]
    with pytest.raises(ValueError, match="unknown ranker"):
        index.search("x", 1, "bm26")


def test_wordllama_ranker_loads_shipped_weights_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wordllama")

    def no_download(*a: object, **k: object) -> None:
        raise AssertionError("wordllama tried to download")

    monkeypatch.setattr("wordllama.wordllama.WordLlama.download_file_from_hf", no_download, raising=False)
    ranker = embed.enable(embed.WordLlamaEmbedder())
    index = Index.build(TREE)
    scores = ranker.files(index, "cookies kept between requests")
    assert scores[index.position("pkg/cookies.py")] > scores[index.position("pkg/maths.py")]
    assert index.search("cookies", 1, "src:bm25+emb")[0].path == "pkg/cookies.py"


def test_http_embedder_speaks_the_openai_embeddings_api() -> None:
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/embeddings":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            vecs = [[1.0, 0.0] if "cookie" in t.lower() else [0.0, 1.0] for t in body["input"]]
            data = [{"index": i, "embedding": v} for i, v in reversed(list(enumerate(vecs)))]
            out = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        embedder = embed.HTTPEmbedder(url, "codestral-embed", api_key="k")
        vectors = embedder.embed(["a cookie", "maths"])
        np.testing.assert_allclose(vectors, [[1.0, 0.0], [0.0, 1.0]])
        assert seen[0]["path"] == "/v1/embeddings" and seen[0]["model"] == "codestral-embed"
        assert seen[0]["auth"] == "Bearer k"
        with pytest.raises(embed.EmbeddingError, match="embeddings"):
            embed.HTTPEmbedder(f"http://127.0.0.1:{server.server_port}/nothing", "m").embed(["x"])
    finally:
        server.shutdown()


def _same_scores(a: Index, b: Index, queries: list[str]) -> None:
    assert [f.path for f in a.files] == [f.path for f in b.files]
    assert a.refs == b.refs
    for q in queries:
        assert np.allclose(a.file_scores(q), b.file_scores(q)), q
        assert np.allclose(a.definition_scores(q), b.definition_scores(q)), q


def test_incremental_build_scores_like_a_cold_build(tmp_path: Path) -> None:
    queries = ["cookie header", "multiply numbers", "parse", "removed helper", "add square"]
    base = {**TREE, "pkg/gone.py": b'def removed_helper():\n    """Only here."""\n'}
    edited = {k: v for k, v in base.items() if k != "pkg/gone.py"}
    edited["pkg/maths.py"] = b"def multiply(a, b):\n    return a * b\n"
    edited["pkg/new.py"] = b"from pkg.maths import multiply\n\ndef square(x):\n    return multiply(x, x)\n"
    # A file kept unchanged that uses `cube`, a name only the edited tree defines.
    base["pkg/user.py"] = edited["pkg/user.py"] = b"def use():\n    return cube(2)\n"
    edited["pkg/cube.py"] = b"def cube(x):\n    return x ** 3\n"
    first = Index.build(base, cache=IndexCache(tmp_path))
    # From the on-disk cache (the nearest cached tree is the base) and from the previous index in memory.
    from_disk = Index.build(edited, cache=IndexCache(tmp_path))
    in_memory = Index.build(edited, previous=first)
    cold = Index.build(edited)
    assert not from_disk.loaded and from_disk.reused == len(edited) - 3
    assert from_disk.refs[from_disk.position("pkg/user.py")].get("cube") == 1
    assert "remov" not in from_disk._file_bm25.vocab_dict  # a deleted file's terms are dropped
    _same_scores(from_disk, cold, queries)
    _same_scores(in_memory, cold, queries)
    assert from_disk.search_definitions("square", 1)[0].name == "square"
    assert IndexCache(tmp_path).nearest_tree({"other/x.py": "0" * 40}) is None  # nothing alike: no base


def test_parallel_parse_matches_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    import devloop.retrieval.parsing as parsing_mod

    tree = {
        f"pkg/m{i}.py": f"def func_{i}(value):\n    return helper_{i % 7}(value)\n".encode()
        for i in range(40)
    }
    serial = Index.build(tree)
    monkeypatch.setattr(parsing_mod, "PARALLEL_MIN_FILES", 10)
    monkeypatch.setenv("DEVLOOP_INDEX_WORKERS", "2")
    parallel = Index.build(tree)
    _same_scores(parallel, serial, ["func value", "helper"])
    assert [f.definitions for f in parallel.files] == [f.definitions for f in serial.files]


def test_defs_ranker_scores_a_file_by_its_best_definition() -> None:
    # Files without definitions between files with them (a per-file run of definitions may be empty).
    index = Index.build({**TREE, "pkg/consts.py": b"COOKIE_HEADER = 'Cookie'\n", "pkg/zz.md": b"cookie"})
    q = "parse the cookie header"
    per_def = index.definition_scores(q)
    want = np.zeros(len(index.files))
    for n, (i, _) in enumerate(index.definitions()):
        want[i] = max(want[i], per_def[n])
    assert want[index.position("pkg/consts.py")] == 0 and want.max() > 0
    np.testing.assert_allclose(rank.file_scores(index, q, "defs"), want)
    assert rank.parse_method("default") == ["bm25", "map", "defs"]


def test_a_query_reuses_its_fused_file_scores_until_a_ranker_changes() -> None:
    index = Index.build(TREE)
    q = "cookie header"
    first = rank.file_scores(index, q, "src:bm25+map")
    assert rank.file_scores(index, q, "src:bm25+map") is first  # search_definitions' prior: not recomputed
    assert rank.file_scores(index, "maths add", "src:bm25+map") is not first
    calls: list[str] = []

    def only_maths(ix: Index, query: str) -> np.ndarray:
        calls.append(query)
        return np.asarray([float(f.path == "pkg/maths.py") for f in ix.files])

    try:
        rank.register("fake", only_maths)
        before = rank.file_scores(index, q, "fake")
        rank.register("fake", lambda ix, query: only_maths(ix, query) * 2)  # registered again: recomputed
        after = rank.file_scores(index, q, "fake")
        assert calls == [q, q] and after.max() == 2 * before.max() == 2
    finally:
        rank._FILE_RANKERS.pop("fake", None)


def test_fused_definitions_weigh_the_file_prior_and_named_identifiers() -> None:
    tree = {
        **TREE,
        # Two definitions with the same words: the issue names only `set_cookie_value`.
        "pkg/jar.py": b"def set_cookie_value(jar, name):\n    return jar\n\n"
        b"def get_cookie_value(jar, name):\n    return jar\n",
    }
    index = Index.build(tree)
    issue = "set_cookie_value breaks: the cookie value of a jar is lost"
    ranked = [index.definitions()[n][1].name for n, _ in rank.rank_definitions(index, issue, "src:bm25+map")]
    assert ranked[0] == "set_cookie_value"
    bm25_only = index.definition_scores(issue)
    pos = {d.name: n for n, (_, d) in enumerate(index.definitions())}
    fused = dict(rank.rank_definitions(index, issue, "src:bm25+map"))
    files = rank.file_scores(index, issue, "src:bm25+map")
    jar = index.position("pkg/jar.py")
    n = pos["set_cookie_value"]
    assert fused[n] == pytest.approx(bm25_only[n] * files[jar] * rank.MENTION_BOOST)
    # Test files are no source: their definitions are left out under src:.
    test_def = pos["test_cookie_jar"]
    assert test_def not in fused


def test_ranking_with_the_map_does_not_import_networkx() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom devloop.retrieval import Index\n"
        "i = Index.build({'a.py': b'def parse_header(): split_pairs()', 'b.py': b'def split_pairs(): pass'})\n"
        "assert i.search('parse_header calls split_pairs', 2, 'default')\nprint('networkx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # only RepoMap.graph needs it
