"""Requirement lists the official way: a repository's requirements file expanded, cleaned, and layered.

The official harness builds an environment in steps (conda packages, then `pip install -r` of the
repository's requirements file at `environment_setup_commit`, then `pip install` of the spec's
`pip_packages`); devloop resolves one list, so the steps are layered: a later pinned requirement replaces
an earlier one of the same name, a later bare name keeps the earlier (pip leaves an installed package
alone).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence

# What the official reader drops from a requirements file: the editable self-install, comments, and the
# project's own test extra.
_EXCLUDED_PREFIXES = ("-e .", "#", ".[test")


def _kept(line: str) -> bool:
    return not line.strip().startswith(_EXCLUDED_PREFIXES)


def expand_requirements(
    read: Callable[[str], str | None],
    paths: Sequence[str],
    replacements: Sequence[tuple[str, str | None]] = (),
) -> tuple[str, str]:
    """(the path used, the requirements text) as the official harness installs it.

    `read(path)` returns a file of the tree at the setup commit, or None when it is absent. The first of
    `paths` present is used; each `-r other.txt` line is replaced by that file's lines (one level, relative
    to the first file, skipped when absent), which come first, then the file's own lines; lines starting
    with `-e .`, `#` or `.[test` are dropped. Then the official replacements of yanked packages apply
    (the name and its version specifier replaced, or the line removed). Raises LookupError when no path is
    present.
    """
    for path in paths:
        text = read(path)
        if text is not None:
            break
    else:
        raise LookupError(f"no requirements file at {', '.join(paths)}")
    included: list[str] = []
    own: list[str] = []
    folder = posixpath.dirname(path)
    for line in text.split("\n"):
        if line.strip().startswith("-r"):
            other = read(posixpath.join(folder, line[2:].strip()))
            if other is not None:
                included += [extra for extra in other.split("\n") if _kept(extra)]
        elif _kept(line):
            own.append(line)
    combined = "\n".join([*included, "\n".join(own)])
    for yanked, replacement in replacements:
        name = re.escape(yanked)
        if replacement is None:
            combined = re.sub(rf"^{name}([<>=!~]=?.*|$)\n?", "", combined, flags=re.MULTILINE)
        else:
            combined = re.sub(rf"^{name}([<>=!~]=?.*|$)", replacement, combined, flags=re.MULTILINE)
    return path, combined


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements text: blank lines and comments dropped, inline comments cut."""
    lines = []
    for raw in text.split("\n"):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _name(requirement: str) -> str | None:
    # packaging is imported where a requirement is parsed: ~17 ms of every `devloop eval` start otherwise
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return None


def _constrains(requirement: str) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return True
    return bool(parsed.specifier) or parsed.url is not None or bool(parsed.extras)


def layer(first: Sequence[str], then: Sequence[str]) -> list[str]:
    """`first` installed, then `then`, as one list: a constrained (pinned, URL, extras) entry of `then`
    replaces `first`'s entry of the same name in place; a bare name already present is dropped; the rest
    are appended. Entries that are not requirements (options such as `--index-url`) are kept as they are."""
    merged: list[str] = []
    where: dict[str, int] = {}
    for entry in [*first, *then]:
        name = _name(entry)
        if name is None:
            merged.append(entry)
        elif name not in where:
            where[name] = len(merged)
            merged.append(entry)
        elif _constrains(entry):
            merged[where[name]] = entry
    return merged
