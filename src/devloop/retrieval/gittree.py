"""The files of one commit of a (bare) git repository, read with plumbing: `ls-tree` for the listing and
one `cat-file --batch` for the blobs. Nothing is checked out, so no filter, hook or attribute of the
repository runs; git reads no configuration but the command line's and the repository's own (for a
mirror devloop fetched), and replace refs are ignored so a commit means what its id says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_CONFIG = (
    "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.attributesFile=/dev/null",
    "core.quotepath=false", "safe.directory=*", "gc.auto=0", "protocol.allow=never",
)  # fmt: skip
_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "HOME": "/nonexistent", "LC_ALL": "C",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}  # fmt: skip
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class GitTreeError(Exception):
    """A repository or commit that cannot be read; one line naming it."""


def _git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    argv = ["git", "--git-dir", str(git_dir), *(a for c in _CONFIG for a in ("-c", c)), *args]
    proc = subprocess.run(argv, input=input, capture_output=True, env=_ENV, check=False)
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitTreeError(f"git {args[0]} in {git_dir}: {last[-1] if last else f'exit {proc.returncode}'}")
    return proc.stdout


def listing(git_dir: Path, commit: str) -> dict[str, str]:
    """Path -> blob id of every regular file (no link, no submodule) of `commit`."""
    if not _OID.fullmatch(commit):
        raise GitTreeError(f"{commit!r} is not a full commit id")
    out = _git(git_dir, "ls-tree", "-r", "-z", "--full-tree", f"{commit}^{{tree}}")
    files: dict[str, str] = {}
    for entry in filter(None, out.split(b"\0")):
        meta, path = entry.split(b"\t", 1)
        mode, kind, oid = meta.split()
        if kind == b"blob" and mode in (b"100644", b"100755"):
            files[path.decode("utf-8", errors="replace")] = oid.decode()
    return files


def read_blobs(git_dir: Path, oids: list[str], max_bytes: int | None = None) -> dict[str, bytes]:
    """Blob id -> bytes for `oids` (one `cat-file --batch`); a blob over `max_bytes` is left out."""
    if not oids:
        return {}
    out = _git(git_dir, "cat-file", "--batch", input="".join(f"{o}\n" for o in oids).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    for oid in oids:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        if len(header) < 3 or header[1] != b"blob":  # `<oid> missing`
            pos = header_end + 1
            continue
        size = int(header[2])
        if max_bytes is None or size <= max_bytes:
            blobs[oid] = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    return blobs


def read_files(
    git_dir: Path, files: dict[str, str], paths: list[str], max_bytes: int | None = None
) -> dict[str, bytes]:
    """Path -> bytes for `paths` of a `listing`."""
    blobs = read_blobs(git_dir, sorted({files[p] for p in paths}), max_bytes)
    return {p: blobs[files[p]] for p in paths if files[p] in blobs}
