"""What task and prediction files may name: ids that are one plain path component, patch paths inside the tree.

Task files, the built-in suite and predictions are input devloop did not write. An instance id becomes a
directory name (`<run>/instances/<id>/`) and a temporary-directory prefix, and every path a patch names is
joined to an instance tree on the host (test files reset to base, leftover `.rej` files removed), so both
are checked before anything is built from them. The checks are pure string functions, shared by the
loaders (a `file:line: field: problem` error), the run directory (a ValueError) and grading (a failed apply).
"""

from __future__ import annotations

import os
import re
import string

MAX_ID_LENGTH = 200
"""Longest accepted instance id: under NAME_MAX (255) with room for the prefixes and suffixes devloop adds."""

ID_CHARS = frozenset(string.ascii_letters + string.digits + "._+=-")
"""Characters of an instance id: what official ids use (`astropy__astropy-12907`), and exactly the ones the
run directory always kept in file names, so a valid id is its own directory name and two ids never collide."""

# Appended unquoted to the test command (as the official harness does), so a test path must not carry shell
# syntax: a quote, `$(...)`, `;` or a glob there would be run or expanded by the grading shell.
SHELL_SPECIAL = frozenset(" \t$`;|&<>()'\"\\*?[]{}!#~")

_SHOWN = 60


def shown(value: str) -> str:
    """`value` quoted for a one-line message: repr (so control characters are escaped), cut to 60 chars."""
    return repr(value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "...")


def _control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def component_problem(name: str) -> str | None:
    """Why `name` is not a safe single path component (an instance id, a mirror name), or None."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_ID_LENGTH:
        return f"{shown(name)} is {len(name)} characters long (at most {MAX_ID_LENGTH})"
    if "\x00" in name:
        return f"{shown(name)} contains a NUL byte"
    if _control(name):
        return f"{shown(name)} contains a control character"
    for sep in ("/", "\\"):
        if sep in name:
            return f"{shown(name)} contains {sep!r}: it must be a single path component"
    if name in (".", ".."):
        return f"{shown(name)} names a directory, not an instance"
    if name[0] in ".-":
        return f"{shown(name)} starts with {name[0]!r}"
    bad = next((c for c in name if c not in ID_CHARS), None)
    if bad is not None:
        return f"{shown(name)} contains {bad!r}: use letters, digits and ._+=- (like astropy__astropy-12907)"
    return None


def check_component(name: object, what: str = "instance id") -> str:
    """`name` if it is a safe single path component, else ValueError with a one-line message."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__}")
    problem = component_problem(name)
    if problem is not None:
        raise ValueError(f"{what} {problem}")
    return name


def path_problem(path: str) -> str | None:
    """Why `path` (a patch path, relative to the instance tree) is unsafe to join to the tree, or None.

    A safe path is relative, normalised (no `.`, empty or trailing components), has no `..` component, does
    not name a `.git` (file or directory, any case, at any depth) and has no NUL or control character.
    """
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains a NUL byte"
    if _control(path):
        return "contains a control character"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if ".." in parts:
        return "has a '..' component"
    if os.path.normpath(path) != path:
        return "is not normalised"
    if any(part.lower() == ".git" for part in parts):
        return "is inside .git/"
    return None


def _unquote(raw: str) -> str:
    """A path as git writes it: C-quoted ("a/t\\303\\251st\\tx") when it has unusual characters."""
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        return raw
    simple = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    out = bytearray()
    body = raw[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            octal = re.match(r"[0-7]{1,3}", body[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(), 8) & 0xFF)
                i += 1 + len(octal.group())
                continue
            out.append(simple.get(body[i + 1], ord(body[i + 1]) & 0xFF))
            i += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "replace")


def _header_path(raw: str) -> str | None:
    """The path of a `---`/`+++` line, as harness.diffs reads it: before a tab, unquoted, a/ b/ removed."""
    raw = raw.split("\t", 1)[0].rstrip("\r\n")
    raw = _unquote(raw.strip()) if raw.strip().startswith('"') else raw
    if raw == "/dev/null":
        return None
    return raw[2:] if raw[:2] in ("a/", "b/") else raw


def _git_header_paths(rest: str) -> list[str]:
    """Both names of `diff --git a/X b/Y`, read every way a parser might split an unquoted line."""
    rest = rest.rstrip("\r\n")
    if rest.startswith('"') or rest.endswith('"'):
        tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', rest)
        return [path for token in tokens if (path := _header_path(token)) is not None]
    found = []
    for pattern in (r"a/(.*) b/(.*)$", r"a/(.*?) b/(.*)$"):
        if m := re.match(pattern, rest):
            found += [m.group(1), m.group(2)]
    return found


_NAME_LINES = ("rename from ", "rename to ", "copy from ", "copy to ")


def patch_paths(patch: str) -> list[str]:
    """Every path a unified or git diff could make a tool touch, in order, without duplicates.

    Deliberately more than `harness.diffs.touched_paths` reads (rename/copy lines, both splits of a `diff
    --git` line, `---`/`+++` pairs wherever they appear): a path some parser would act on is never unchecked.
    """
    lines = patch.splitlines()
    out: dict[str, None] = {}
    for i, line in enumerate(lines):
        names: list[str | None] = []
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            names = [_header_path(line[4:]), _header_path(lines[i + 1][4:])]
        elif line.startswith("diff --git "):
            names = list(_git_header_paths(line[len("diff --git ") :]))
        elif line.startswith(_NAME_LINES):
            names = [_unquote(line.split(" ", 2)[2].rstrip("\r\n"))]
        for name in names:
            if name is not None:
                out[name] = None
    return list(out)


def patch_problem(patch: str, *, shell_safe: bool = False) -> str | None:
    """`path 'X' has a '..' component` for the first unsafe path `patch` names, or None when all are safe.

    `shell_safe` also refuses paths with characters a shell would interpret (test patches: their files are
    appended to the test command).
    """
    for path in patch_paths(patch):
        problem = path_problem(path)
        if problem is None and shell_safe:
            bad = next((c for c in path if c in SHELL_SPECIAL), None)
            if bad is not None:
                problem = f"contains {bad!r}, which the test command's shell would interpret"
        if problem is not None:
            return f"path {shown(path)} {problem}"
    return None
