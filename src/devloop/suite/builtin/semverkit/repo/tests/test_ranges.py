import pytest

from semverkit import InvalidRange, Version, bump, max_satisfying, satisfies


@pytest.mark.parametrize("version,rng,ok", [
    ("1.4.0", "^1.2", True),
    ("2.0.0", "^1.2", False),
    ("0.3.9", "^0.3.1", True),
    ("0.4.0", "^0.3.1", False),
    ("1.4.9", "~1.4.2", True),
    ("1.5.0", "~1.4.2", False),
    ("1.9.0", ">=1.2.0 <2.0.0", True),
    ("3.0.0", "<2 || >=3", True),
], ids=["caret-in", "caret-out", "caret-zero-in", "caret-zero-out", "tilde-in", "tilde-out", "and-range", "or-range"])
def test_satisfies(version, rng, ok):
    assert satisfies(version, rng) is ok


def test_prerelease_excluded_unless_named():
    assert not satisfies("2.0.0-rc.1", ">=1.0.0")
    assert satisfies("2.0.0-rc.2", ">=2.0.0-rc.1")
    assert satisfies("2.0.0-rc.1", ">=1.0.0", include_prerelease=True)


def test_max_satisfying():
    assert max_satisfying(["1.2.0", "1.9.3", "2.0.0"], "^1.0") == "1.9.3"
    assert max_satisfying(["3.0.0"], "^1.0") is None


def test_invalid_range():
    with pytest.raises(InvalidRange):
        satisfies("1.0.0", ">=banana")


def test_bump():
    v = Version.parse("1.2.3")
    assert str(bump(v, "minor")) == "1.3.0"
    assert str(bump(v, "prerelease")) == "1.2.4-rc.1"
    assert str(bump(Version.parse("1.2.4-rc.9"), "prerelease")) == "1.2.4-rc.10"
    assert str(bump(Version.parse("2.0.0-rc.1"), "major")) == "2.0.0"
