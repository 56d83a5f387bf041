import pytest

from semverkit import InvalidVersion, Version


def test_parse_and_str():
    v = Version.parse("v1.2.3-rc.1+build.5")
    assert (v.major, v.minor, v.patch) == (1, 2, 3)
    assert v.prerelease == ("rc", "1")
    assert str(v) == "1.2.3-rc.1+build.5"


@pytest.mark.parametrize("bad", ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "x.y.z"])
def test_invalid(bad):
    with pytest.raises(InvalidVersion):
        Version.parse(bad)


def test_core_ordering():
    assert Version.parse("1.2.3") < Version.parse("1.10.0") < Version.parse("2.0.0")


def test_release_after_prerelease():
    assert Version.parse("1.0.0-rc.1") < Version.parse("1.0.0")


def test_longer_prerelease_is_greater():
    assert Version.parse("1.0.0-alpha") < Version.parse("1.0.0-alpha.1")


def test_numeric_identifiers_sort_before_alphanumeric():
    assert Version.parse("1.0.0-1") < Version.parse("1.0.0-alpha")
    assert Version.parse("1.0.0-alpha.1") < Version.parse("1.0.0-alpha.beta")


def test_build_metadata_ignored():
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")
    assert len({Version.parse("1.0.0+a"), Version.parse("1.0.0+b")}) == 1


def test_sorting_mixed():
    texts = ["1.0.0", "1.0.0-beta", "1.0.0-alpha.beta", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-rc.1"]
    ordered = sorted(texts, key=Version.parse)
    assert ordered == ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-rc.1", "1.0.0"]
