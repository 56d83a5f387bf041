"""Semantic versions: parse, compare, bump, match ranges."""

from semverkit.bump import bump
from semverkit.errors import InvalidRange, InvalidVersion
from semverkit.ranges import Range, max_satisfying, satisfies
from semverkit.version import Version

__all__ = ["InvalidRange", "InvalidVersion", "Range", "Version", "bump", "max_satisfying", "satisfies"]
