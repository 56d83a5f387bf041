import pytest

from eventbus import topic_matches
from eventbus.topics import validate_topic


@pytest.mark.parametrize("pattern,topic,ok", [
    ("a.b", "a.b", True),
    ("a.*", "a.b", True),
    ("a.*", "a.b.c", False),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("*.b", "x.b", True),
    ("a.b", "a", False),
], ids=["exact", "star", "star-one-segment-only", "hash-zero", "hash-many", "leading-star", "shorter-topic"])
def test_topic_matches(pattern, topic, ok):
    assert topic_matches(pattern, topic) is ok


@pytest.mark.parametrize("bad", ["", "a..b", "a.#.b", "sp ace"], ids=["empty", "double-dot", "inner-hash", "space"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        validate_topic(bad, pattern=True)
