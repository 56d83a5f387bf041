"""The editor's text operations, as pure functions on decoded file text (no file system here).

Everything works on the text exactly as decoded, `\\r\\n` included, so bytes outside the edited region
are never touched. Line numbers are 1-based, as `cat -n` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from devloop.tools.textfile import EditorError, split_lines, to_newline

# How many unchanged lines to show around an edit.
CONTEXT_LINES = 4
# At most this many match positions are listed in an "old_str is not unique" error.
MAX_LISTED_MATCHES = 20


@dataclass
class Edit:
    """The result of an edit: the new text and the lines (1-based, inclusive) that now hold the change."""

    text: str
    first_line: int
    last_line: int


def find_all(text: str, needle: str) -> list[int]:
    """Offsets of every occurrence of `needle`, overlapping ones included (they are just as ambiguous)."""
    found: list[int] = []
    at = text.find(needle)
    while at != -1:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def line_of(text: str, offset: int) -> int:
    """The 1-based line number holding `offset`."""
    return text.count("\n", 0, offset) + 1


def numbered(lines: list[str], first: int = 1) -> str:
    """Lines in `cat -n` style: the number right-aligned in 6 columns, a tab, the line."""
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, start=first))


def _squash(line: str) -> str:
    return " ".join(line.split())


def whitespace_matches(text: str, old: str) -> list[int]:
    """Lines where `old` would match if runs of whitespace (indentation, tabs vs spaces, trailing
    blanks, line endings) were ignored. Used only to explain a failed match."""
    old_lines = [_squash(line) for line in split_lines(old.strip("\r\n"))]
    if not old_lines or not any(old_lines):
        return []
    file_lines = [_squash(line) for line in split_lines(text)]
    hits: list[int] = []
    if len(old_lines) == 1:
        return [n for n, line in enumerate(file_lines, start=1) if old_lines[0] in line]
    first, *middle, last = old_lines
    for i in range(len(file_lines) - len(old_lines) + 1):
        window = file_lines[i : i + len(old_lines)]
        if (
            window[0].endswith(first)
            and window[1 : len(old_lines) - 1] == middle
            and window[-1].startswith(last)
        ):
            hits.append(i + 1)
    return hits


def _candidates(old: str, new: str, file_newline: str) -> list[tuple[str, str]]:
    """(old, new) pairs to try in order: as given, then with line endings translated to the file's.

    When `old` spans lines and matches as given, the region uses those endings and `new` keeps the
    model's; when `old` has no line break, the new lines follow the file's dominant convention.
    """
    if "\n" not in old:
        return [(old, to_newline(new, file_newline))]
    pairs = [(old, to_newline(new, "\r\n") if "\r\n" in old else new)]
    if file_newline == "\r\n" and "\r\n" not in old:
        pairs.append((to_newline(old, "\r\n"), to_newline(new, "\r\n")))
    elif "\r\n" in old:
        pairs.append((old.replace("\r\n", "\n"), new.replace("\r\n", "\n")))
    return pairs


def replace_once(text: str, old: str, new: str, file_newline: str, shown_path: str) -> Edit:
    """Replace the single occurrence of `old` with `new`; EditorError if it occurs zero or several times."""
    if old == "":
        raise EditorError(
            "old_str must not be empty: it has to be an exact, unique fragment of the file. "
            "To add text without replacing any, use the `insert` command."
        )
    if old == new:
        raise EditorError("old_str and new_str are identical, so there is nothing to replace.")
    for old_try, new_try in _candidates(old, new, file_newline):
        hits = find_all(text, old_try)
        if len(hits) == 1:
            start = hits[0]
            result = text[:start] + new_try + text[start + len(old_try) :]
            first = line_of(text, start)
            last = first + new_try.count("\n")
            if new_try.endswith("\n"):
                last -= 1
            return Edit(result, first, last)
        if len(hits) > 1:
            lines = sorted({line_of(text, at) for at in hits})
            listed = ", ".join(str(n) for n in lines[:MAX_LISTED_MATCHES])
            more = (
                f" (and {len(lines) - MAX_LISTED_MATCHES} more lines)"
                if len(lines) > MAX_LISTED_MATCHES
                else ""
            )
            raise EditorError(
                f"No replacement was made: old_str occurs {len(hits)} times in {shown_path}, starting on "
                f"{'line' if len(lines) == 1 else 'lines'} {listed}{more}. Include more surrounding lines in old_str so that it matches "
                "exactly one place."
            )
    message = f"No replacement was made: old_str was not found verbatim in {shown_path}."
    near = whitespace_matches(text, old)
    if near:
        where = ", ".join(str(n) for n in near[:MAX_LISTED_MATCHES])
        message += (
            f" It does match if whitespace is ignored ({'line' if len(near) == 1 else 'lines'} {where}): "
            "the indentation, tabs/spaces or trailing blanks differ. View those lines and copy them exactly."
        )
    else:
        message += " View the file to copy the exact current text (whitespace and indentation included)."
    raise EditorError(message)


def insert_after(text: str, line: int, new: str, file_newline: str, shown_path: str) -> Edit:
    """Insert `new` as whole lines after line `line` (0 = before the first line).

    A single trailing newline in `new` just terminates its last line. The file's line endings and the
    presence or absence of its final newline are kept.
    """
    count = len(split_lines(text))
    if line < 0 or line > count:
        raise EditorError(
            f"insert_line {line} is out of range: {shown_path} has {count} line(s), so insert_line must be "
            f"between 0 (before the first line) and {count} (after the last line)."
        )
    body = to_newline(new, file_newline)
    if body.endswith("\n"):
        body = body[:-2] if body.endswith("\r\n") else body[:-1]
    added = body.count("\n") + 1
    if not text:
        return Edit(body + file_newline, 1, added)
    if line == count and not text.endswith("\n"):
        return Edit(text + file_newline + body, line + 1, line + added)
    offset = 0
    for _ in range(line):
        offset = text.index("\n", offset) + 1
    return Edit(text[:offset] + body + file_newline + text[offset:], line + 1, line + added)


def snippet(text: str, first: int, last: int) -> tuple[str, int, int]:
    """`cat -n` lines around [first, last] with CONTEXT_LINES of context; returns (text, from, to)."""
    lines = split_lines(text)
    start = max(1, first - CONTEXT_LINES)
    end = min(len(lines), max(last, first) + CONTEXT_LINES)
    return numbered(lines[start - 1 : end], start), start, end
