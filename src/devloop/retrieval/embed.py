"""Optional embedding rankers, fused with the others by reciprocal rank (`rank.register("emb", ...)`).

Nothing is ever downloaded at run time: the default embedder is wordllama, whose wheel ships its weights
(loaded from the package's own directory with downloads disabled); the other is any OpenAI-compatible
`/v1/embeddings` endpoint the user serves (a Codestral Embed, a sentence-transformers server). A file
is embedded as its path and its definitions' names, signatures and docstrings; a definition as its
name, signature and docstring. Vectors are kept on the index, so one tree is embedded once."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from devloop.retrieval.index import Index

_FILE_CHARS = 4000
_BATCH = 256


class EmbeddingError(Exception):
    """The embedder cannot be loaded or reached; one line saying why."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class WordLlamaEmbedder:
    """wordllama's shipped `l2_supercat` model (256 dimensions), offline."""

    name = "wordllama"

    def __init__(self) -> None:
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError:
            raise EmbeddingError("wordllama is not installed (pip install 'devloop[embeddings]')") from None
        package = os.path.dirname(wordllama.__file__)
        try:
            self._model = WordLlama.load(
                config="l2_supercat", dim=256, cache_dir=package, disable_download=True
            )
        except (FileNotFoundError, ValueError, OSError) as e:
            raise EmbeddingError(f"wordllama's shipped weights could not be loaded: {e}") from None

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)


class HTTPEmbedder:
    """An OpenAI-compatible `POST {url}/embeddings` (url ends in `/v1`)."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self.name = f"http:{model}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    def embed(self, texts: list[str]) -> np.ndarray:
        import httpx

        out: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            try:
                resp = httpx.post(
                    self.url,
                    json={"model": self.model, "input": batch},
                    headers=self._headers,
                    timeout=self._timeout,
                )
                resp.raise_for_status()
                data = sorted(resp.json()["data"], key=lambda d: d["index"])
                out.extend(d["embedding"] for d in data)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                raise EmbeddingError(f"{self.url}: {type(e).__name__}: {e}") from None
            if len(out) != start + len(batch):
                raise EmbeddingError(f"{self.url}: {len(out) - start} embeddings for {len(batch)} inputs")
        vectors = np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def file_text(index: Index, i: int) -> str:
    f = index.files[i]
    parts = [f.path.replace("/", " ").replace("_", " ")]
    parts += [f"{d.name} {d.signature} {d.doc}" for d in f.definitions]
    return "\n".join(parts)[:_FILE_CHARS]


class EmbeddingRanker:
    """Cosine similarity of the query to each file and definition, shifted to be positive."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def _vectors(self, index: Index, kind: str) -> np.ndarray:
        key = f"emb:{self.embedder.name}:{kind}"
        got = index.extras.get(key)
        if isinstance(got, np.ndarray):
            return got
        if kind == "files":
            texts = [file_text(index, i) for i in range(len(index.files))]
        else:
            texts = [f"{d.name} {d.signature} {d.doc}" for _, d in index.definitions()]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        index.extras[key] = vectors
        return vectors

    def _similarity(self, index: Index, query: str, kind: str) -> np.ndarray:
        vectors = self._vectors(index, kind)
        if len(vectors) == 0:
            return np.zeros(0)
        q = self.embedder.embed([query])[0]
        return 1.0 + vectors @ q

    def files(self, index: Index, query: str) -> np.ndarray:
        return self._similarity(index, query, "files")

    def definitions(self, index: Index, query: str) -> np.ndarray:
        return self._similarity(index, query, "defs")


def enable(embedder: Embedder | None = None) -> EmbeddingRanker:
    """Register the `emb` ranker with `embedder` (default: the configured one, see `configured`)."""
    from devloop.retrieval import rank

    ranker = EmbeddingRanker(embedder or configured())
    rank.register("emb", ranker.files, ranker.definitions)
    return ranker


def configured() -> Embedder:
    """`DEVLOOP_EMBED_URL` (+ `DEVLOOP_EMBED_MODEL`, `DEVLOOP_EMBED_API_KEY`) for an endpoint, else
    wordllama."""
    url = os.environ.get("DEVLOOP_EMBED_URL")
    if url:
        model = os.environ.get("DEVLOOP_EMBED_MODEL")
        if not model:
            raise EmbeddingError("DEVLOOP_EMBED_URL is set but DEVLOOP_EMBED_MODEL is not")
        return HTTPEmbedder(url, model, os.environ.get("DEVLOOP_EMBED_API_KEY"))
    return WordLlamaEmbedder()
