"""The test files the official harness appends to the test command, in its order.

The official harness takes the `b/` path of every `diff --git a/... b/...` header in the test patch, in the
order the headers appear (a new empty file stays where its header is), drops non-test files by extension,
and for django turns paths into runtests.py's dotted module names relative to tests/. The headers are
matched anywhere in a line, with the greedy `a/.* b/` split the official pattern makes.
"""

from __future__ import annotations

import re

from devloop.swebench.specs import table

_HEADER = re.compile(r"diff --git a/.* b/(.*)")


def test_directives(test_patch: str, repo: str = "") -> list[str]:
    """The official test directives of `test_patch` for `repo`, in diff header order."""
    paths = [p for p in _HEADER.findall(test_patch) if not p.endswith(table().non_test_exts)]
    if repo == "django/django":
        paths = [p.removesuffix(".py").removeprefix("tests/").replace("/", ".") for p in paths]
    return paths
