from __future__ import annotations


def parse_class(pattern: str, start: int) -> tuple[set[str] | None, list[tuple[str, str]], bool, int] | None:
    """Parse a bracket expression at pattern[start] == '['.

    Returns (single characters, ranges, negated, index after ']') or None when the bracket is not closed,
    in which case '[' is an ordinary character.
    """
    i = start + 1
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]" and not first:
            return chars, ranges, negated, i + 1
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            ranges.append((ch, pattern[i + 2]))
            i += 3
        else:
            chars.add(ch)
            i += 1
        first = False
    return None


def class_matches(spec: tuple[set[str] | None, list[tuple[str, str]], bool, int], ch: str) -> bool:
    chars, ranges, negated, _ = spec
    hit = ch in (chars or set()) or any(lo <= ch <= hi for lo, hi in ranges)
    return hit != negated
