from __future__ import annotations

from globmatch.charclass import class_matches, parse_class


def match_segment(pattern: str, name: str) -> bool:
    """Match one path segment (no '/') against a pattern with *, ? and [...]."""
    return _match(pattern, 0, name, 0)


def _match(pattern: str, pi: int, name: str, ni: int) -> bool:
    while pi < len(pattern):
        ch = pattern[pi]
        if ch == "*":
            # Try every possible length for this star.
            for k in range(ni, len(name) + 1):
                if _match(pattern, pi + 1, name, k):
                    return True
            return False
        if ni >= len(name):
            return False
        if ch == "?":
            pass
        elif ch == "[":
            spec = parse_class(pattern, pi)
            if spec is not None:
                if not class_matches(spec, name[ni]):
                    return False
                pi = spec[3]
                ni += 1
                continue
            if name[ni] != "[":
                return False
        elif ch == "\\" and pi + 1 < len(pattern):
            pi += 1
            if name[ni] != pattern[pi]:
                return False
        elif name[ni] != ch:
            return False
        pi += 1
        ni += 1
    return ni == len(name)
