"""A file's section of the patch, computed in-process when git's answer is certain, else None.

The per-step patch is `git diff <base>`; on a step that only rewrote files the patch already covers, one
git process (a few milliseconds, more in a sandbox) is most of what the step costs the host. For the
common edit the diff has exactly one answer, and then any diff program, git included, must give it:

- every line that is only in the old file (or only in the new one) is removed (added), and every other
  line is kept. When the kept lines of the two files form the same sequence, that edit script is the only
  shortest one: no shortest script can keep a line the other file lacks, and keeping all the rest is
  possible in one way only. No group of changed lines can then be slid up or down either (that would need
  a changed line equal to a kept neighbour), so the choices git makes between equally short scripts (its
  sliding and indent heuristic) never arise;
- git's diff may set aside, before comparing, a line that occurs often in the other file when changed
  lines surround it; that line then shows as removed and added although it could be kept. Such a line
  occurs at least twice in the other file, so wherever one sits between changed lines (with nothing but
  changed or repeated lines between them) the answer is left to git.

What is computed here is then git's own output: unified hunks with three lines of context, hunks fewer
than seven unchanged lines apart joined, and the hunk header's function name being git's default one
(no diff driver: the caller leaves any tree with a `.gitattributes` to git). A differential test against
git (tests/workspace/test_textdiff.py) checks it on random edits. Anything else (binary data, a missing
final newline, a mode change, a path git would quote, a big file) is None: git computes it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

CONTEXT = 3
MAX_BYTES = 1 << 20  # past this a diff in Python costs more than the git process it spares
_FUNC_MAX = 80  # git keeps at most this many bytes of a hunk header's function line
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._+/@%,=~-]+")  # printed by git as is (no quoting, no spaces)
_HEADER = re.compile(r"diff --git a/(\S+) b/\1\nindex ([0-9a-f]{7,64})\.\.([0-9a-f]{7,64}) (100644|100755)\n")


@dataclass(frozen=True)
class Base:
    """A file's content at the base, and how git names it in the patch."""

    data: bytes
    old_id: str  # the abbreviated blob id on the section's `index` line
    mode: str


def blob_id(data: bytes) -> str:
    """The git (SHA-1) object id of a blob holding `data`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def plain_path(path: str) -> bool:
    return bool(_PLAIN_PATH.fullmatch(path)) and ".." not in path.split("/")


def _lines(data: bytes) -> list[bytes] | None:
    if not data or not data.endswith(b"\n") or b"\0" in data or len(data) > MAX_BYTES:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return data[:-1].split(b"\n")


def split_sections(patch: str) -> list[tuple[str, str]] | None:
    """`patch`'s per-file sections in order, each with its path when it is a plain modification of a
    plain path (see _HEADER), else with ""; None if `patch` is not a git diff."""
    if not patch:
        return []
    if not patch.startswith("diff --git "):
        return None
    out = []
    for text in re.split(r"(?m)^(?=diff --git )", patch):
        if not text:
            continue
        head = _HEADER.match(text)
        plain = head is not None and plain_path(head.group(1)) and _is_modification(text[head.end() :])
        out.append((head.group(1) if plain and head is not None else "", text))
    return out


def _is_modification(body: str) -> bool:
    return body.startswith("--- a/") and "\n@@ " in body and "\n\\ " not in body


def base_of(section: str, data: bytes) -> Base | None:
    """The base content behind `section` (git's, for a file now holding `data`), checked against both
    ids on its `index` line; None when they disagree (the file moved on since git read it) or the
    section is not one this module can rebuild."""
    head = _HEADER.match(section)
    if head is None or "\n\\ " in section or not blob_id(data).startswith(head.group(3)):
        return None
    new = _lines(data)
    if new is None:
        return None
    old: list[bytes] = []
    at = 0  # next line of `new` not yet accounted for
    body = section[head.end() :].encode("utf-8", "surrogateescape").split(b"\n")
    if len(body) < 3 or not body[0].startswith(b"--- ") or not body[1].startswith(b"+++ "):
        return None
    hunk = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
    for line in body[2:]:
        if line.startswith(b"@@"):
            m = hunk.match(line)
            if m is None:
                return None
            start = int(m.group(3)) - (1 if m.group(4) != b"0" else 0)
            if start < at:
                return None
            old += new[at:start]
            at = start
        elif line[:1] == b" " or line[:1] == b"+":
            if at >= len(new) or new[at] != line[1:]:
                return None
            if line[:1] == b" ":
                old.append(line[1:])
            at += 1
        elif line[:1] == b"-":
            old.append(line[1:])
        elif line:
            return None
    old += new[at:]
    data_old = b"".join(x + b"\n" for x in old)
    if not blob_id(data_old).startswith(head.group(2)):
        return None
    return Base(data_old, head.group(2), head.group(4))


def section(path: str, base: Base, data: bytes) -> str | None:
    """git's section of the patch for `path` holding `data` over `base` ("" when they are equal), or
    None when more than one answer is possible or the content is not plain text (see the module)."""
    if data == base.data:
        return ""
    old, new = _lines(base.data), _lines(data)
    if old is None or new is None or not plain_path(path):
        return None
    in_new, in_old = Counter(new), Counter(old)
    gone = [line not in in_new for line in old]
    added = [line not in in_old for line in new]
    if [x for x, g in zip(old, gone, strict=True) if not g] != [
        x for x, a in zip(new, added, strict=True) if not a
    ]:
        return None
    if not (_settled(old, gone, in_new) and _settled(new, added, in_old)):
        return None
    changes = _changes(gone, added)
    hunks = []
    func_at, func = -1, b""
    for group in _hunk_groups(changes):
        first, last = group[0], group[-1]
        s1 = max(first[0] - CONTEXT, 0)
        s2 = first[1] - (first[0] - s1)
        e1 = min(last[0] + last[2] + CONTEXT, len(old))
        e2 = last[1] + last[3] + (e1 - last[0] - last[2])
        for line_no in range(s1 - 1, func_at, -1):  # the nearest function line above, back to the last hunk's
            if _is_func(old[line_no]):
                func = old[line_no][:_FUNC_MAX].rstrip(b" \t\n\v\f\r")
                break
        func_at = s1 - 1
        out = [_range_header(s1, e1 - s1, s2, e2 - s2, func)]
        i1 = s1
        for at_old, at_new, removed, added_n in group:
            out += [b" " + x for x in old[i1:at_old]]
            out += [b"-" + x for x in old[at_old : at_old + removed]]
            out += [b"+" + x for x in new[at_new : at_new + added_n]]
            i1 = at_old + removed
        out += [b" " + x for x in old[i1:e1]]
        hunks.append(b"\n".join(out) + b"\n")
    new_id = blob_id(data)[: len(base.old_id)]
    head = f"diff --git a/{path} b/{path}\nindex {base.old_id}..{new_id} {base.mode}\n--- a/{path}\n+++ b/{path}\n"
    return head + b"".join(hunks).decode("utf-8", errors="replace")


def _settled(lines: list[bytes], changed: list[bool], other: Counter[bytes]) -> bool:
    """No kept line that occurs more than once in the other file sits between changed lines with only
    changed or such lines in between (where git may set it aside; see the module)."""
    seen_changed = repeated_after = False
    for line, ch in zip(lines, changed, strict=True):
        if ch:
            if repeated_after:
                return False
            seen_changed = True
        elif other[line] >= 2:
            repeated_after = repeated_after or seen_changed
        else:
            seen_changed = repeated_after = False
    return True


def _changes(gone: list[bool], added: list[bool]) -> list[tuple[int, int, int, int]]:
    """(old index, new index, lines removed, lines added) per run of changes between kept lines."""
    out = []
    i = j = 0
    while i < len(gone) or j < len(added):
        if i < len(gone) and j < len(added) and not gone[i] and not added[j]:
            i, j = i + 1, j + 1
            continue
        i0, j0 = i, j
        while i < len(gone) and gone[i]:
            i += 1
        while j < len(added) and added[j]:
            j += 1
        if i == i0 and j == j0:  # unequal kept lines: section() checked they are not
            raise AssertionError("kept lines differ")
        out.append((i0, j0, i - i0, j - j0))
    return out


def _hunk_groups(changes: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """The changes of each hunk: changes at most 2 * CONTEXT unchanged lines apart share one."""
    groups = [[changes[0]]]
    for ch in changes[1:]:
        prev = groups[-1][-1]
        if ch[0] - (prev[0] + prev[2]) > 2 * CONTEXT:
            groups.append([ch])
        else:
            groups[-1].append(ch)
    return groups


def _is_func(line: bytes) -> bool:
    return bool(line) and (line[:1].isalpha() or line[:1] in (b"_", b"$"))


def _range_header(s1: int, c1: int, s2: int, c2: int, func: bytes) -> bytes:
    def part(start: int, count: int) -> bytes:
        shown = start + 1 if count else start
        return b"%d" % shown if count == 1 else b"%d,%d" % (shown, count)

    tail = b" " + func if func else b""
    return b"@@ -" + part(s1, c1) + b" +" + part(s2, c2) + b" @@" + tail
