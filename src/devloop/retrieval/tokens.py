"""A code-aware tokenizer: identifiers split at snake_case, camelCase, digits and path separators, then
stemmed, so that the query "header parsing" meets `parse_http_header` and `HTTPHeaderParser`."""

from __future__ import annotations

import collections
import functools
import re

import Stemmer

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
# An upper-case run before a capitalised word (HTTPHeader -> HTTP, Header), a capitalised or lower word,
# or a digit run.
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Words too common in code and prose to tell files apart.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "we",
        "you",
        "not",
        "no",
        "can",
        "do",
        "does",
        "self",
        "cls",
        "none",
        "true",
        "false",
        "def",
        "class",
        "return",
        "import",
        "should",
        "would",
        "could",
        "when",
        "which",
        "what",
        "how",
    ]
)

_MIN_LEN = 2


@functools.cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=200_000)
def word_tokens(word: str) -> tuple[str, ...]:
    """The stemmed tokens of one identifier: its parts, and itself whole when it has several."""
    parts = [p.lower() for p in _PART.findall(word)]
    lowered = word.lower()
    # The whole identifier too, so an exact name outranks its scattered parts.
    found = parts if len(parts) == 1 and parts[0] == lowered else [*parts, lowered]
    kept = [p for p in found if len(p) >= _MIN_LEN and p not in STOPWORDS]
    return tuple(_stemmer().stemWords(kept))


def word_counts(text: str) -> dict[str, int]:
    """How often each raw identifier or number occurs in `text` (not split, not stemmed)."""
    return dict(collections.Counter(_WORD.findall(text)))  # Counter counts in C


def tokenize(text: str) -> list[str]:
    """The stemmed tokens of `text`, identifiers split into their words (and also kept whole)."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(word_tokens(word))
    return out
