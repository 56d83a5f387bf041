"""Completion of `@path` mentions in the prompt: the repository's files, listed beneath its open fd
(a link is shown as a name, never followed), .git left out."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document

MAX_ENTRIES = 200


def path_candidates(repo: Path, partial: str) -> list[str]:
    """Paths under `repo` that `partial` (a path being typed) can complete to; directories end in `/`."""
    head, _, stem = partial.rpartition("/")
    if head.startswith("/") or ".." in head.split("/"):
        return []
    from devloop.safefs import SafeFSError, SafeRoot  # at the first completion, not before the prompt

    try:
        with SafeRoot(repo) as root:
            entries = root.listdir(head or "", shown=head or ".")
    except (SafeFSError, OSError):
        return []
    found = []
    for e in entries:
        if not e.name.startswith(stem) or e.name == ".git" or (e.name.startswith(".") and not stem):
            continue
        name = posixpath.join(head, e.name) if head else e.name
        found.append(name + "/" if e.is_dir else name)
        if len(found) >= MAX_ENTRIES:
            break
    return found


class MentionCompleter(Completer):
    def __init__(self, repo: Path) -> None:
        self.repo = repo.resolve()

    def get_completions(self, document: Document, complete_event: Any) -> Iterable[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        if not word.startswith("@"):
            return
        partial = word[1:]
        for path in path_candidates(self.repo, partial):
            yield Completion("@" + path, start_position=-len(word), display=path)
