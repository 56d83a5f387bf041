"""Reading and parsing the files of a tree: which files are indexed, their bytes read beneath an open
directory (`safefs`: links are never followed, FIFOs and devices never opened), and what each blob parses
to (tree-sitter definitions and raw word counts), in forked worker processes for a large cold build."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devloop.retrieval.definitions import Definition, extract, language_of
from devloop.retrieval.tokens import word_counts
from devloop.safefs import SafeFSError, SafeRoot

MAX_FILE_BYTES = 1_000_000
# Directories that hold no source worth ranking (and may be huge).
SKIPPED_DIRS = frozenset(
    {".git", ".devloop-git", ".devloop", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "build", "dist", ".eggs"}
)  # fmt: skip
TEXT_SUFFIXES = (".py", ".pyi", ".md", ".rst", ".txt", ".cfg", ".toml", ".ini", ".yaml", ".yml", ".json")

Reader = Callable[[list[str]], Mapping[str, bytes]]


def blob_id(data: bytes) -> str:
    """Git's object id of a blob holding `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def indexable(path: str) -> bool:
    parts = path.split("/")
    return path.endswith(TEXT_SUFFIXES) and not any(p in SKIPPED_DIRS for p in parts[:-1])


@dataclass
class Parsed:
    """What one blob yields, whatever its path: its definitions and its raw word counts."""

    definitions: list[Definition]
    words: dict[str, int]


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


def parse_key(path: str, blob: str) -> str:
    """What a parse depends on: the blob, and the language its path gives it."""
    return f"{blob}:{language_of(path) or 'text'}"


def parse(path: str, data: bytes) -> Parsed:
    """Definitions (tree-sitter) and word counts of one file's bytes."""
    return Parsed(extract(path, data), word_counts(data.decode("utf-8", errors="replace")))


PARALLEL_MIN_FILES = 200  # below this, starting worker processes costs more than it saves


def _parse_chunk(items: list[tuple[str, bytes]]) -> list[Parsed]:
    return [parse(path, data) for path, data in items]


def workers() -> int:
    """Parse processes for a cold build: `DEVLOOP_INDEX_WORKERS`, else the CPUs this process may use."""
    raw = os.environ.get("DEVLOOP_INDEX_WORKERS", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def _can_fork() -> bool:
    import multiprocessing
    import threading

    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def _parse_all(paths: list[str], read: Reader, keys: Mapping[str, str]) -> dict[str, Parsed]:
    """Parse `paths` (one per distinct parse key), in worker processes when there are many and this
    process has a single thread: tree-sitter and the tokenizer are CPU-bound and hold the GIL."""
    if not paths:
        return {}
    data = read(paths)
    todo: dict[str, tuple[str, bytes]] = {}
    for path in paths:
        if path in data and keys[path] not in todo:
            todo[keys[path]] = (path, data[path])
    n = workers()
    items = list(todo.items())
    if n > 1 and len(items) >= PARALLEL_MIN_FILES and _can_fork():
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Interleaved chunks even out the sizes. Fork, not spawn or forkserver: those re-run the main
        # script in each worker (a script without a __main__ guard would run again) and import
        # everything again; forking is safe here because this process has no other thread.
        chunks = [[v for _, v in items[i :: n * 4]] for i in range(n * 4)]
        try:
            with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
                results = list(pool.map(_parse_chunk, chunks))
        except (OSError, RuntimeError):
            results = [_parse_chunk(c) for c in chunks]  # no processes here: parse in this one
        out: dict[str, Parsed] = {}
        for i, parsed in enumerate(results):
            for (k, _), p in zip(items[i :: n * 4], parsed, strict=True):
                out[k] = p
        return out
    return {k: parse(path, d) for k, (path, d) in items}
