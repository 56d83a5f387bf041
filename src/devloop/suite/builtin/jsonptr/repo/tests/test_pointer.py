import pytest

from jsonptr import JsonPointer, PointerError, escape

DOC = {"users": [{"name": "ann", "tags": ["a", "b"]}], "a/b": 1, "m~n": 2, "": 3, "x": {"y": None}}


@pytest.mark.parametrize("text,expected", [
    ("", DOC),
    ("/users/0/name", "ann"),
    ("/users/0/tags/1", "b"),
    ("/a~1b", 1),
    ("/m~0n", 2),
    ("/", 3),
    ("/x/y", None),
], ids=["root", "nested", "array", "slash", "tilde", "empty-key", "null"])
def test_resolve(text, expected):
    assert JsonPointer(text).resolve(DOC) == expected


@pytest.mark.parametrize("text", ["users", "/users/5", "/users/01", "/users/-", "/nope", "/users/0/name/x"],
                         ids=["no-slash", "out-of-range", "leading-zero", "end-marker", "missing", "into-string"])
def test_resolve_errors(text):
    with pytest.raises(PointerError):
        JsonPointer(text).resolve(DOC)


def test_default():
    assert JsonPointer("/nope").resolve(DOC, default=None) is None


def test_escape():
    assert escape("a/b~c") == "a~1b~0c"


def test_from_tokens():
    assert JsonPointer.from_tokens(["users", 0, "a/b"]).text == "/users/0/a~1b"


def test_add_and_remove():
    doc = {"xs": [1, 3]}
    JsonPointer("/xs/1").add(doc, 2)
    JsonPointer("/xs/-").add(doc, 4)
    assert doc == {"xs": [1, 2, 3, 4]}
    assert JsonPointer("/xs/0").remove(doc) == 1
    with pytest.raises(PointerError):
        JsonPointer("/missing").remove(doc)
