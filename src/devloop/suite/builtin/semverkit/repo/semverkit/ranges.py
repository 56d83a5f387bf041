from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable

from semverkit.errors import InvalidRange, InvalidVersion
from semverkit.version import Version

_OPS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_TERM = re.compile(r"^(\^|~|>=|<=|>|<|=)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?$")


def _expand(term: str) -> list[tuple[str, Version]]:
    match = _TERM.match(term)
    if not match:
        raise InvalidRange(f"invalid range term: {term!r}")
    op, major, minor, patch, pre = match.groups()
    if pre and (minor is None or patch is None):
        raise InvalidRange(f"a prerelease needs a full version: {term!r}")
    try:
        low = Version.parse(f"{major}.{minor or 0}.{patch or 0}{pre or ''}")
    except InvalidVersion as exc:
        raise InvalidRange(str(exc)) from None
    M, m = int(major), int(minor or 0)
    if op == "^":
        high = Version(M + 1, 0, 0) if M else Version(0, m + 1, 0) if minor is not None else Version(1, 0, 0)
        return [(">=", low), ("<", high)]
    if op == "~" or (op is None and patch is None):
        high = Version(M, m + 1, 0) if minor is not None else Version(M + 1, 0, 0)
        return [(">=", low), ("<", high)]
    return [(op or "=", low)]


class Range:
    """A conjunction of comparators, e.g. '>=1.2.0 <2.0.0', '^1.4', '~0.3.1'. '||' separates alternatives."""

    def __init__(self, text: str) -> None:
        self.text = text
        alternatives = [alt.strip() for alt in text.split("||")]
        if not all(alternatives):
            raise InvalidRange(f"empty alternative in {text!r}")
        self.sets = [[c for term in alt.replace(",", " ").split() for c in _expand(term)] for alt in alternatives]

    def matches(self, version: Version, include_prerelease: bool = False) -> bool:
        for comparators in self.sets:
            if not all(_OPS[op](version, bound) for op, bound in comparators):
                continue
            if version.is_prerelease and not include_prerelease:
                # npm rule: a prerelease only matches a range naming a prerelease of the same release.
                if not any(b.is_prerelease and b.release() == version.release() for _, b in comparators):
                    continue
            return True
        return False


def satisfies(version: str, range_text: str, include_prerelease: bool = False) -> bool:
    return Range(range_text).matches(Version.parse(version), include_prerelease)


def max_satisfying(versions: Iterable[str], range_text: str) -> str | None:
    """The highest version in `versions` matching the range, or None."""
    rng = Range(range_text)
    matching = [Version.parse(v) for v in versions if rng.matches(Version.parse(v))]
    return str(max(matching)) if matching else None
