import pytest

from globmatch import match_segment


@pytest.mark.parametrize("pattern,name,ok", [
    ("*.py", "setup.py", True),
    ("*.py", "setup.pyc", False),
    ("test_?.py", "test_a.py", True),
    ("test_?.py", "test_ab.py", False),
    ("[abc]*", "beta", True),
    ("[!abc]*", "beta", False),
    ("[a-f]x", "dx", True),
    ("[]]", "]", True),
    ("[", "[", True),
    ("\\*", "*", True),
    ("\\*", "a", False),
    ("*", "", True),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXbYY", False),
], ids=["suffix", "suffix-mismatch", "question", "question-too-long", "class", "negated-class", "range",
        "bracket-literal", "unclosed-bracket", "escaped-star", "escaped-star-mismatch", "star-empty",
        "stars-in-order", "stars-missing-tail"])
def test_match_segment(pattern, name, ok):
    assert match_segment(pattern, name) is ok
