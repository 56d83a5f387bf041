"""Counting and trimming tokens for the failure summary's budget.

A real tokenizer is used when one is usable: tiktoken's `o200k_base` (or `cl100k_base`) encoding, if tiktoken
is installed and its encoding file is available (tiktoken downloads it on first use, which fails offline).
Otherwise the count is the documented approximation `ceil(len(text) / 3)`: tracebacks and code average
3.5-4 characters per token with common BPE vocabularies, so dividing by 3 over-counts and a summary trimmed
to the approximate budget stays within the real one.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable

CHARS_PER_TOKEN = 3
# Loading an encoding may try the network; never wait longer than this for it.
_LOAD_WAIT_S = 3.0


@functools.lru_cache(maxsize=1)
def _encoder() -> object | None:
    try:
        import tiktoken
    except ImportError:
        return None
    found: list[object] = []

    def load() -> None:
        for name in ("o200k_base", "cl100k_base"):
            try:
                found.append(tiktoken.get_encoding(name))
                return
            except Exception:  # offline, or a broken cache: try the next, then fall back
                continue

    worker = threading.Thread(target=load, name="devloop-tokenizer", daemon=True)
    worker.start()
    worker.join(_LOAD_WAIT_S)
    return found[0] if found else None


def tokenizer_name() -> str:
    """What counts tokens here: the tiktoken encoding's name, or "chars/3" for the approximation."""
    enc = _encoder()
    return f"tiktoken:{enc.name}" if enc is not None else f"chars/{CHARS_PER_TOKEN}"  # type: ignore[attr-defined]


def count_tokens(text: str) -> int:
    """Tokens in `text` (see the module docstring for which tokenizer)."""
    enc = _encoder()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))  # type: ignore[attr-defined]
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def trim_to_tokens(
    text: str,
    budget: int,
    *,
    marker: str = "\n[... trimmed to fit the token budget]",
    count: Callable[[str], int] = count_tokens,
) -> str:
    """`text` if it fits `budget` tokens, else its longest prefix (cut at a line end where possible) that fits
    together with `marker`."""
    if count(text) <= budget:
        return text
    room = budget - count(marker)
    if room <= 0:
        return ""
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix within `room`, by binary search over characters
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= room:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    newline = cut.rfind("\n")
    if newline > len(cut) // 2:
        cut = cut[:newline]
    return cut.rstrip() + marker
