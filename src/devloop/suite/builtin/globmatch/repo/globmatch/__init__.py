"""Glob matching for slash-separated paths."""

from globmatch.patterns import PatternList
from globmatch.segment import match_segment
from globmatch.path import match_path

__all__ = ["PatternList", "match_path", "match_segment"]
