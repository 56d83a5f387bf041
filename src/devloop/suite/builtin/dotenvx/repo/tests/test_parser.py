import pytest

from dotenvx import DotenvError, parse_dotenv


def test_basic_forms():
    text = """
# comment
A=1
export B = two words
C='single ${A}'
D="line\\nbreak"
E=value # trailing comment
F=
"""
    assert parse_dotenv(text) == [
        ("A", "1", True),
        ("B", "two words", True),
        ("C", "single ${A}", False),
        ("D", "line\nbreak", True),
        ("E", "value", True),
        ("F", "", True),
    ]


def test_hash_inside_quotes_kept():
    assert parse_dotenv('URL="http://x/#frag"  # c') == [("URL", "http://x/#frag", True)]


@pytest.mark.parametrize("text,message", [
    ("NOVALUE", "expected KEY=VALUE"),
    ("A='open", "unterminated single quote"),
    ('A="open', "unterminated double quote"),
    ('A="x" y', "unexpected text"),
], ids=["no-equals", "single-quote", "double-quote", "trailing-text"])
def test_errors(text, message):
    with pytest.raises(DotenvError, match=message):
        parse_dotenv(text, "app.env")
