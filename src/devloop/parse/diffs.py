"""Reading unified diffs: which files a patch touches, its hunks, and the test files it names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Files of these kinds in a test patch are data, not test files to run (as in the official harness).
NON_TEST_EXTS = (".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml")

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    """One hunk: its position in the old file and its old/new lines (with their line endings)."""

    old_start: int
    old_lines: list[str] = field(default_factory=list)
    new_lines: list[str] = field(default_factory=list)


@dataclass
class FileDiff:
    """One file's section of a diff. `old_path`/`new_path` are None for /dev/null (created/deleted)."""

    old_path: str | None
    new_path: str | None
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        """The path the change is about: the new path, or the old one for a deletion."""
        return self.new_path or self.old_path or ""


def _unquote(path: str) -> str:
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        path = path.encode("latin-1").decode("utf-8", "replace")
    return path


def _strip_prefix(raw: str) -> str | None:
    raw = raw.split("\t", 1)[0].rstrip("\r\n")
    raw = _unquote(raw.strip()) if raw.strip().startswith('"') else raw
    if raw == "/dev/null":
        return None
    return raw[2:] if raw[:2] in ("a/", "b/") else raw


def _no_newline(hunk: Hunk, last_tag: str) -> None:
    """Apply a "\\ No newline at end of file" marker to the line before it."""
    if last_tag in ("-", " ") and hunk.old_lines:
        hunk.old_lines[-1] = hunk.old_lines[-1].rstrip("\r\n")
    if last_tag in ("+", " ") and hunk.new_lines:
        hunk.new_lines[-1] = hunk.new_lines[-1].rstrip("\r\n")


def parse_diff(patch: str) -> list[FileDiff]:
    """The files of a unified (git or plain) diff, with their hunks."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_left = new_left = 0
    lines = patch.splitlines(keepends=True)
    last_tag = " "
    i = 0
    while i < len(lines):
        line = lines[i]
        if hunk is not None and (old_left > 0 or new_left > 0):
            tag = line[:1]
            if line.startswith("\\"):
                _no_newline(hunk, last_tag)
            elif tag in (" ", "-", "+") or line in ("\n", "\r\n"):
                body = line[1:] if tag in (" ", "-", "+") else line
                if tag != "+":
                    hunk.old_lines.append(body)
                    old_left -= 1
                if tag != "-":
                    hunk.new_lines.append(body)
                    new_left -= 1
                last_tag = tag if tag in ("-", "+") else " "
            else:
                hunk = None
                continue
            i += 1
            continue
        if line.startswith("\\") and hunk is not None:
            _no_newline(hunk, last_tag)
            i += 1
            continue
        if line.startswith("diff --git "):
            current = None
            hunk = None
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            current = FileDiff(_strip_prefix(line[4:]), _strip_prefix(lines[i + 1][4:]))
            files.append(current)
            hunk = None
            i += 2
            continue
        elif (m := _HUNK.match(line)) and current is not None:
            hunk = Hunk(old_start=int(m.group(1)))
            old_left = int(m.group(2)) if m.group(2) is not None else 1
            new_left = int(m.group(4)) if m.group(4) is not None else 1
            last_tag = " "
            current.hunks.append(hunk)
        i += 1
    files.extend(_git_only_files(patch, files))
    return files


def _git_only_files(patch: str, seen: list[FileDiff]) -> list[FileDiff]:
    """Sections with no ---/+++ lines (binary, mode-only, empty new files, pure renames)."""
    known = {f.path for f in seen} | {f.old_path for f in seen if f.old_path}
    extra: list[FileDiff] = []
    sections = re.split(r"^diff --git ", patch, flags=re.M)[1:]
    for section in sections:
        header = section.splitlines()[0] if section else ""
        m = re.match(r"a/(.*) b/(.*)$", header)
        if not m or m.group(2) in known or m.group(1) in known:
            continue
        new = None if "\ndeleted file mode" in section else m.group(2)
        old = None if "\nnew file mode" in section else m.group(1)
        extra.append(FileDiff(old, new))
    return extra


def touched_paths(patch: str) -> list[str]:
    """Every path a patch touches (old and new names), in order, without duplicates."""
    out: dict[str, None] = {}
    for f in parse_diff(patch):
        for p in (f.old_path, f.new_path):
            if p:
                out[p] = None
    return list(out)


def test_directives(test_patch: str, repo: str = "") -> list[str]:
    """The test files the official harness appends to the test command: the patch's new paths.

    For django/django they become dotted module names relative to tests/ (runtests.py's form).
    """
    paths = [f.new_path for f in parse_diff(test_patch) if f.new_path]
    paths = [p for p in paths if not p.endswith(NON_TEST_EXTS)]
    if repo == "django/django":
        paths = [p.removesuffix(".py").removeprefix("tests/").replace("/", ".") for p in paths]
    return list(dict.fromkeys(paths))
