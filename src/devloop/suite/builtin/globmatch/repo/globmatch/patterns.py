from __future__ import annotations

from collections.abc import Iterable

from globmatch.path import match_path


class PatternList:
    """Ordered gitignore-style patterns; the last matching pattern decides. '!' negates, '#' comments."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.rules: list[tuple[bool, bool, str]] = []  # (negated, dir_only, pattern)
        for raw in lines:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            dir_only = line.endswith("/")
            self.rules.append((negated, dir_only, line.rstrip("/")))

    def matches(self, path: str, is_dir: bool = False) -> bool:
        result = False
        for negated, dir_only, pattern in self.rules:
            if dir_only and not is_dir:
                continue
            if match_path(pattern, path):
                result = not negated
        return result

    def filter(self, paths: Iterable[str]) -> list[str]:
        """The paths that are not matched (i.e. not ignored)."""
        return [p for p in paths if not self.matches(p)]
