from __future__ import annotations

from globmatch.segment import match_segment


def _split(path: str) -> list[str]:
    return [part for part in path.strip("/").split("/") if part not in ("", ".")]


def match_path(pattern: str, path: str) -> bool:
    """Match a whole slash-separated path. '**' as a segment matches zero or more directories.

    A pattern without a slash matches the last segment at any depth (like .gitignore).
    """
    pat = _split(pattern)
    parts = _split(path)
    if len(pat) == 1 and "/" not in pattern.strip("/"):
        return bool(parts) and match_segment(pat[0], parts[-1])
    return _match_parts(pat, 0, parts, 0)


def _match_parts(pat: list[str], pi: int, parts: list[str], si: int) -> bool:
    if pi == len(pat):
        return si == len(parts)
    if pat[pi] == "**":
        return any(_match_parts(pat, pi + 1, parts, k) for k in range(si, len(parts) + 1))
    if si == len(parts) or not match_segment(pat[pi], parts[si]):
        return False
    return _match_parts(pat, pi + 1, parts, si + 1)
