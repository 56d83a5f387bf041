"""Compute git object ids in pure Python, so a cached repository can be checked without running git.

The ids match what `git commit` produces for the same tree, author, committer, dates and message
(SHA-1 object format, every file stored as a regular, non-executable blob).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


def _object_id(kind: str, body: bytes) -> bytes:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).digest()


def blob_id(data: bytes) -> bytes:
    """The raw (20-byte) id git gives a blob with this content."""
    return _object_id("blob", data)


def tree_id(files: Mapping[str, bytes]) -> bytes:
    """The raw id of the tree holding `files` (posix relative path -> content, all mode 100644)."""
    entries: dict[str, tuple[str, bytes]] = {}
    subdirs: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        head, sep, rest = path.partition("/")
        if sep:
            subdirs.setdefault(head, {})[rest] = data
        else:
            entries[head] = ("100644", blob_id(data))
    for name, sub in subdirs.items():
        entries[name] = ("40000", tree_id(sub))
    # git orders tree entries by name, comparing a directory's name as if it ended with "/".
    order = sorted(entries, key=lambda n: n.encode() + (b"/" if entries[n][0] == "40000" else b""))
    body = b"".join(f"{entries[n][0]} {n}\0".encode() + entries[n][1] for n in order)
    return _object_id("tree", body)


def commit_id(tree: bytes, *, name: str, email: str, timestamp: int, message: str) -> str:
    """The hex id of a root commit (no parents) of `tree` with identical author and committer."""
    ident = f"{name} <{email}> {timestamp} +0000"
    body = f"tree {tree.hex()}\nauthor {ident}\ncommitter {ident}\n\n{message}".encode()
    return _object_id("commit", body).hex()


def read_tree_files(root: Path, skip: frozenset[str]) -> dict[str, bytes]:
    """Every regular file under `root` (posix relative path -> bytes), leaving out names in `skip`."""
    files: dict[str, bytes] = {}
    # os.walk, not Path.rglob: every eval of the builtin suite hashes its 20 trees, and pathlib's
    # per-entry objects made that twice as slow.
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".pyc")]
        rel = os.path.relpath(top, root).replace(os.sep, "/")
        for name in names:
            path = os.path.join(top, name)
            if name in skip or name.endswith(".pyc") or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                files[name if rel == "." else f"{rel}/{name}"] = f.read()
    return files
