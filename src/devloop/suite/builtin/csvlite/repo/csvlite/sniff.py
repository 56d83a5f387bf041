from __future__ import annotations

from collections import Counter

from csvlite.errors import CsvError

CANDIDATES = (",", ";", "\t", "|")


def sniff_delimiter(sample: str, candidates: tuple[str, ...] = CANDIDATES) -> str:
    """Guess the delimiter: the candidate appearing the same, non-zero number of times on most lines."""
    lines = [line for line in sample.splitlines() if line.strip()][:20]
    if not lines:
        raise CsvError("cannot sniff an empty sample")
    best, best_score = None, 0
    for cand in candidates:
        counts = Counter(line.count(cand) for line in lines)
        per_line, freq = counts.most_common(1)[0]
        if per_line == 0:
            continue
        score = freq * 10 + per_line
        if score > best_score:
            best, best_score = cand, score
    if best is None:
        raise CsvError("no delimiter found in sample")
    return best
