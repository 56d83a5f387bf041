"""The install script's `sed -i 's/PATTERN/REPLACEMENT/[g]' FILE` edits, applied in Python to text read
from the mirror (the official pre_install edits setup.py before installing; devloop never runs sed on
the host), so a requirement is read as the install will see it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

_SED_SPECIAL = set("+?(){}|")


def _bre_to_python(pattern: str) -> str:
    """A sed basic regular expression as a Python one: `\\(`/`\\)` group, `.`, `*`, `^`, `$` and brackets
    keep their meaning, and what is literal in a BRE (`+ ? ( ) { } |`) is escaped."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "()" else re.escape(nxt))
            i += 2
            continue
        out.append("\\" + ch if ch in _SED_SPECIAL else ch)
        i += 1
    return "".join(out)


def _sed_replacement(text: str) -> str:
    """A sed replacement as a Python one: `&` is the match, `\\N` a group, `\\X` the literal X."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(f"\\g<{nxt}>" if nxt.isdigit() else nxt.replace("\\", "\\\\"))
            i += 2
            continue
        out.append("\\g<0>" if ch == "&" else ch.replace("\\", "\\\\"))
        i += 1
    return "".join(out)


def sed_edits(install: str | None) -> list[tuple[str, re.Pattern[str], str, bool]]:
    """The `sed -i 's/PATTERN/REPLACEMENT/[g]' FILE` steps of an install script, as (file, regex,
    replacement, global): the official pre_install edits setup.py and pyproject.toml (sphinx caps its
    sphinxcontrib pins, astropy its setuptools) before installing, so the declared requirements are read
    as edited. A step of any other form is left out."""
    edits = []
    for line in (install or "").splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) != 4 or words[:2] != ["sed", "-i"] or not words[2].startswith("s") or len(words[2]) < 2:
            continue
        delimiter = words[2][1]
        parts = re.split(rf"(?<!\\){re.escape(delimiter)}", words[2][2:])
        if len(parts) != 3 or parts[2] not in ("", "g"):
            continue
        try:
            regex = re.compile(_bre_to_python(parts[0]))
        except re.error:
            continue
        edits.append((words[3], regex, _sed_replacement(parts[1]), parts[2] == "g"))
    return edits


def edited_reader(read: Callable[[str], str | None], install: str | None) -> Callable[[str], str | None]:
    """`read` with the install script's sed edits applied to what it returns (see `sed_edits`)."""
    edits = sed_edits(install)

    def edited(path: str) -> str | None:
        text = read(path)
        if text is None:
            return None
        lines = text.split("\n")
        for file, regex, replacement, every in edits:
            if file == path:  # sed edits line by line; the first match of each line unless /g
                lines = [regex.sub(replacement, ln, count=0 if every else 1) for ln in lines]
        return "\n".join(lines)

    return edited
