"""Approval by command prefix, decided on the shell's syntax tree (bashlex), never on the text.

A rule `git status` approves `git status` and `git status -s`, but a command approves only when it is
one simple command whose leading words are the rule's words, with nothing else the shell would do: no
redirection (`echo x > file`), no list or pipeline (`cat a; rm -rf b`, `ls | sh`), no substitution or
expansion that runs code (`echo $(rm x)`, backquotes, `<(...)`), no assignment prefix (`PATH=. ls`), no
compound command. A command bashlex cannot parse approves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import bashlex
import bashlex.errors


def _simple_words(command: str) -> list[str] | None:
    """The words of `command` when it is exactly one plain simple command, else None."""
    try:
        trees = bashlex.parse(command)
    except (bashlex.errors.ParsingError, NotImplementedError, IndexError, TypeError, ValueError):
        return None
    if len(trees) != 1 or trees[0].kind != "command":
        return None
    words: list[str] = []
    for part in trees[0].parts:
        if part.kind != "word" or _runs_code(part):
            return None  # a redirection, an assignment, a reserved word...
        words.append(part.word)
    return words or None


def _runs_code(node: Any) -> bool:
    """Whether a word holds a command or process substitution, or a parameter expansion (its value is
    not known when the rule is checked)."""
    for child in getattr(node, "parts", []) or []:
        if child.kind in ("commandsubstitution", "processsubstitution", "parameter", "tilde") or _runs_code(
            child
        ):
            return True
    return False


def prefix_words(rule: str) -> list[str] | None:
    """A rule's words (it must itself be a plain simple command), or None for a rule that is not."""
    return _simple_words(rule)


def approved_by_prefix(command: str, rules: Iterable[str]) -> str | None:
    """The first rule in `rules` that approves `command`, or None."""
    words = _simple_words(command)
    if words is None:
        return None
    for rule in rules:
        want = prefix_words(rule)
        if want and words[: len(want)] == want:
            return rule
    return None
